"""The envelope of one message: who it is from on the wire, and its one recipient."""

Envelope = tuple[str, str]  # (envelope sender, recipient)
