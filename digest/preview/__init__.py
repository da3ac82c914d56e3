"""The local preview server: every subscriber's digest in the browser before it goes out.

`digest preview --serve` runs `serve()`: a Flask app on 127.0.0.1 only (`app.py`). The pages
are built from a `Snapshot` of the inputs (`snapshot.py`), rebuilt whenever a watched file
changes (settings, subscribers, taxonomy, templates, item files, the state; `watch.py`), so an
edit shows on the next request. Each page long-polls `/__changes` with the token it was built
from and reloads when the token moves. An input error (a template's file and line, a bad
setting) is a page with HTTP 500; the server keeps running and the page reloads once the file
is fixed.

Previewing only reads: the state is opened read-only and nothing is sent or recorded. The one
exception is the test-send button, which goes through `send(to=...)` exactly like
`digest send --to`.

Routes (`views.py`):
  GET  /                        every subscriber: regions, topics, items, subject, HTML size
  GET  /s/<email>               one subscriber's email: headers, HTML at two widths, text, size
  GET  /s/<email>/html          the HTML part as sent (the frames load it)
  GET  /s/<email>/text          the plain-text part
  GET  /s/<email>/eml           the whole message
  POST /s/<email>/send          send a test copy to the form's address (`to`)
  GET  /preview?regions=&topics=&group_by=&name=&language=&item_languages=
                                an ad-hoc subscriber: what someone new would get
  GET  /preview/html|text|eml   its parts, same query
  GET  /__changes?since=TOKEN   long-poll: the token of the watched files, once it differs
  GET  /static/preview.js       the page script (also favicon.svg)

Every request must come through the address printed (the Host header, against DNS
rebinding); a form from another origin is refused, and the test-send form carries a CSRF
token. Pages run under `PAGE_CSP`; the email's HTML part under `EMAIL_CSP` (`pages.py`).
"""

from .app import create_app, make_server, serve

__all__ = ["create_app", "make_server", "serve"]
