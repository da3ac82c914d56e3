"""The pages of `digest serve`: unsubscribe (RFC 8058 one-click and the page), the preference
centre, sign-up and its confirmation, and a health check."""

from __future__ import annotations

from typing import Any
from zoneinfo import available_timezones

from flask import Response, redirect, render_template, request
from werkzeug.datastructures import MultiDict

from ..caches import memo
from ..clock import utcnow
from ..compose.i18n import N_
from ..errors import DeliveryError
from ..languages import reader_languages
from ..models import Subscriber, address_key
from ..state import State, WebChanges
from ..subscribers import MergedSubscriber, fields, merged_view, valid_email, web_changes
from .confirmation import lifetime, send_confirmation
from .guards import (
    address_from_token,
    check_form,
    client,
    confirmation_link,
    csrf_token,
    is_one_click,
    limit,
    mailbox_key,
)
from .site import RETRY_LATER, Problem, current_site, log, open_state
from .wording import _, current_language, use_reader_language, with_language, words


@memo(maxsize=1)
def timezone_choices() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """IANA zones for the select, the Americas first; legacy aliases (US/..., EST5EDT) left out."""
    zones = sorted(
        z
        for z in available_timezones()
        if "/" in z and z.split("/")[0] in _ZONE_AREAS and not z.startswith("Etc/")
    )
    americas = tuple(z for z in zones if z.startswith("America/"))
    return (("The Americas", americas), ("Elsewhere", tuple(z for z in zones if z not in americas)))


_ZONE_AREAS = {"Africa", "America", "Antarctica", "Asia", "Atlantic", "Australia", "Europe"}
_ZONE_AREAS |= {"Indian", "Pacific"}


def form_values(subscriber: Subscriber, language: str | None = None) -> dict[str, Any]:
    """The form's values: the subscriber's settings, their language (or `language`, or the
    default) chosen."""
    default = current_site().settings.default_language
    return {
        **fields.subscriber_settings(subscriber),
        "timezone": subscriber.timezone or "",
        "language": subscriber.language or language or default,
    }


# What a subscriber reads when a choice is refused (staff read `fields`' own words).
_REFUSED = {
    "group_by": N_("Choose region or topic."),
    "order": N_("Choose newest or oldest first."),
    "frequency": N_("Choose daily, weekly or monthly."),
    "timezone": N_("Choose a timezone from the list."),
    "language": N_("Choose a language from the list."),
}


def _read_name(raw: str, errors: dict[str, str]) -> str:
    """The name checked as the file's names are (no control characters, no line breaks), then
    with its spaces tidied; refused, it is shown again without its control characters."""
    try:
        name = " ".join(fields.check_name(raw).split())
    except fields.FieldError:
        errors["name"] = _("Please write your name on one line, without control characters.")
        return "".join(c for c in raw if c.isprintable() or c == " ")
    if len(name) > 100:
        errors["name"] = _("Please keep the name under 100 characters.")
    return name


def read_preferences(form: MultiDict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The settings a form asks for (in the stored form) and the problems, by field; each
    value is checked by `subscribers.fields`, as the file's are."""
    taxonomy = current_site().taxonomy
    errors: dict[str, str] = {}
    values: dict[str, Any] = {"name": _read_name(form.get("name", ""), errors)}
    for key, kind, known in (
        ("regions", "region", taxonomy.regions),
        ("topics", "topic", taxonomy.topics),
    ):
        chosen, problems = fields.check_names(form.getlist(key), kind, known)
        if problems:
            unknown = [c for c in form.getlist(key) if fields.known_name(c, known) is None]
            errors[key] = _("Unknown choice: %(choices)s.") % {"choices": ", ".join(unknown[:3])}
        values[key] = [k for k in known if k in chosen]
    for key, refused in _REFUSED.items():
        raw = form.get(key, "").strip()
        try:
            values[key] = fields.CHECKS[key](raw or None)
        except fields.FieldError:
            errors[key], values[key] = _(refused), raw
    try:
        values["item_languages"] = list(fields.check_item_languages(form.getlist("item_languages")))
    except fields.FieldError:
        errors["item_languages"] = _("Choose languages from the list.")
        values["item_languages"] = []
    return values, errors


def page(template: str, code: int = 200, **context: Any) -> tuple[str, int]:
    site = current_site()
    return render_template(
        template,
        list_name=site.list_name,
        regions=site.taxonomy.regions,
        topics=site.taxonomy.topics,
        timezones=timezone_choices(),
        office_timezone=site.settings.schedule.timezone,
        csrf_token=csrf_token,
        languages=reader_languages(),
        **context,
    ), code


def message_page(status: int, title: str, text: str, links: dict[str, str] | None = None) -> Any:
    return page("message.html", status, title=title, text=text, links=links or {})


def merged_one(
    state: State, email: str, file_subscriber: Subscriber | None
) -> MergedSubscriber | None:
    key = address_key(email)
    found = merged_view(
        [file_subscriber] if file_subscriber else [], state, current_site().taxonomy, only=key
    )
    return found[0] if found else None


def unsubscribe_view() -> Any:
    site = current_site()
    if is_one_click():
        try:
            email, _token = address_from_token("unsubscribe")
        except Problem:
            # Mail providers send many one-click POSTs from few addresses: only bad ones count.
            limit("posts", client(), _("Too many requests came from your network."))
            raise
        with open_state() as state:
            changed = WebChanges(state).unsubscribe(email, "one-click", utcnow())
        log.info("one-click unsubscribe %s%s", email, "" if changed else " (already)")
        return message_page(
            200,
            _("You are unsubscribed"),
            _("%(email)s will receive no more digests from us.") % {"email": email},
        )
    email, token = address_from_token("unsubscribe")
    binding = f"unsubscribe:{address_key(email)}"
    if request.method == "POST":
        check_form(binding)
        limit("changes", address_key(email), _(_CHANGED_OFTEN))
        with open_state() as state:
            changed = WebChanges(state).unsubscribe(email, "unsubscribe-page", utcnow())
        log.info("unsubscribe (page) %s%s", email, "" if changed else " (already)")
        return redirect(with_language(site.path("unsubscribe", token=token)), 303)
    with open_state() as state:
        record = WebChanges(state).record(email)
        speak_to(merged_one(state, email, site.file_subscriber(email)))
    return page(
        "unsubscribe.html",
        email=email,
        unsubscribed=record is not None and record.unsubscribed_at is not None,
        binding=binding,
        action=with_language(site.path("unsubscribe", token=token)),
        preferences=with_language(site.path("preferences", token=site.preferences_token(email))),
    )


def speak_to(entry: MergedSubscriber | None) -> None:
    """The page is in this subscriber's language (unless `?lang=` asked for another)."""
    if entry is not None:
        use_reader_language(entry.subscriber.reads(current_site().settings.default_language))


_CHANGED_OFTEN = N_("This address was changed many times just now.")
_DONE = {
    "saved": N_("Your preferences are saved. The next digest follows them."),
    "unsubscribed": N_("You are unsubscribed: no more digests will be sent to you."),
    "resubscribed": N_("Welcome back: you will receive the digest again."),
    "confirmed": N_(
        "Thank you, your subscription is confirmed. Your first digest comes with the next mailing."
    ),
}


def preferences_view() -> Any:
    site = current_site()
    email, token = address_from_token("preferences")
    key = address_key(email)
    binding = f"preferences:{key}"
    action_url = with_language(site.path("preferences", token=token))
    file_subscriber = site.file_subscriber(email)
    errors: dict[str, str] = {}
    values: dict[str, Any] | None = None
    again: str | None = None  # a sign-up to confirm, for an address that must confirm again
    if request.method == "POST":
        check_form(binding)
        limit("changes", key, _(_CHANGED_OFTEN))
        action = request.form.get("action", "")
        now = utcnow()
        with open_state() as state:
            speak_to(merged_one(state, email, file_subscriber))  # a refusal in their language
            changes = WebChanges(state)
            if action == "save":
                wanted, errors = read_preferences(request.form)
                if not errors:
                    _keep_default_language(wanted, file_subscriber)
                    record = changes.record(email)
                    current = record.prefs if record else {}
                    changes.set_preferences(
                        email, web_changes(file_subscriber, wanted, current), "preferences", now
                    )
                    log.info("preferences saved for %s", email)
                    return _back(site.path("preferences", token=token, done="saved"))
                values = {**wanted, "timezone": wanted["timezone"] or ""}
            elif action == "unsubscribe":
                changes.unsubscribe(email, "preferences", now)
                log.info("unsubscribe (preferences) %s", email)
                return _back(site.path("preferences", token=token, done="unsubscribed"))
            elif action == "resubscribe":
                again = _resubscribe(state, email, file_subscriber, now)
                if again is None:
                    return _back(site.path("preferences", token=token, done="resubscribed"))
            else:
                raise Problem(400, _("Unknown action"), _("Nothing was changed."))
        if again is not None:
            return _confirmation_sent(site, email, again[0], again[1])
    with open_state() as state:
        effective = merged_one(state, email, file_subscriber)
    speak_to(effective)
    subscriber = effective.subscriber if effective else Subscriber(email=email)
    status = effective.status if effective else "none"
    done = _DONE.get(request.args.get("done", ""))
    return page(
        "preferences.html",
        400 if errors else 200,
        email=email,
        status=status,
        values=values or form_values(subscriber),
        errors=errors,
        done=_(done) if done and not errors else None,
        binding=binding,
        action=action_url,
    )


def _keep_default_language(wanted: dict[str, Any], file_subscriber: Subscriber | None) -> None:
    """The form shows the language in effect; saving it unchanged keeps a file subscriber on
    the default, so a later change of `default_language` still reaches them."""
    default = current_site().settings.default_language
    unset = file_subscriber is not None and file_subscriber.language is None
    if unset and wanted.get("language") == default:
        wanted["language"] = None


def _back(path: str) -> Any:
    """After a form: back to its page (in the language it was asked in)."""
    return redirect(with_language(path), 303)


def _resubscribe(
    state: State, email: str, file_subscriber: Subscriber | None, now: Any
) -> tuple[str, str] | None:
    """Subscribe the address again at once (None), or, when its mail bounced or it reported
    us as spam, start a sign-up it must confirm by email: that sign-up's id and language."""
    changes = WebChanges(state)
    effective = merged_one(state, email, file_subscriber)
    if effective is None or not confirms_again(effective):
        changes.resubscribe(email, "preferences", now, in_file=file_subscriber is not None)
        log.info("resubscribe %s", email)
        return None
    _limit_confirmations(email)
    details = fields.subscriber_settings(effective.subscriber)
    log.info("resubscribe %s: must confirm the address again (%s)", email, effective.status)
    language = effective.subscriber.reads(current_site().settings.default_language)
    return changes.sign_up(email, details, now, client=client()), language


def subscribe_view() -> Any:
    site = current_site()
    binding = "subscribe"
    if request.method == "GET":
        return page(
            "subscribe.html",
            values=form_values(Subscriber(email=""), current_language()) | {"email": ""},
            errors={},
            binding=binding,
            action=with_language(site.path("subscribe")),
        )
    check_form(binding)
    wanted, errors = read_preferences(request.form)
    use_reader_language(wanted.get("language"))  # the answer is in the language chosen
    email = request.form.get("email", "").strip()
    if not valid_email(email):
        errors["email"] = _("Enter an email address like name@example.org.")
    if errors:
        return page(
            "subscribe.html",
            400,
            values={**wanted, "timezone": wanted["timezone"] or "", "email": email},
            errors=errors,
            binding=binding,
            action=with_language(site.path("subscribe")),
        )
    _limit_confirmations(email)
    with open_state() as state:
        sign_up = WebChanges(state).sign_up(email, wanted, utcnow(), client=client())
    return _confirmation_sent(site, email, sign_up, current_language())


def confirms_again(entry: MergedSubscriber) -> bool:
    """An address whose mail bounced (suppressed) or that reported a digest as spam must
    confirm itself again, by email, to receive the digest again."""
    record = entry.record
    if entry.status == "suppressed":
        return True
    complained = bool(record and record.unsubscribed_via == "complaint")
    return entry.status == "unsubscribed" and complained


def _limit_confirmations(email: str) -> None:
    limit(
        "signups",
        mailbox_key(email),
        _("We sent this address several confirmation emails just now."),
    )
    limit("confirmations", "all", _("We are sending many confirmation emails just now."))


def _confirmation_sent(site: Any, email: str, sign_up: str, language: str) -> Any:
    """Email the confirmation link of `sign_up` in `language`, and say so (503 if the server
    refused it)."""
    try:
        send_confirmation(site, email, sign_up, words(language))
    except DeliveryError as exc:
        log.error("confirmation email to %s failed: %s", email, exc.message)
        raise Problem(
            503,
            _("We could not send the email"),
            _(
                "Our mail server did not take the confirmation email just now. Please try "
                "again in a few minutes."
            ),
            retry_after=RETRY_LATER,
        ) from exc
    log.info("sign-up %s: confirmation sent", email)
    how_long = lifetime(site.settings.web.confirm_within, words())
    return message_page(
        200,
        _("Check your inbox"),
        _(
            "We sent a confirmation link to %(email)s. Open it and press Confirm to start "
            "receiving the digest. The link works for %(lifetime)s. If nothing arrives, check "
            "your spam folder."
        )
        % {"email": email, "lifetime": how_long},
    )


def replaced_page(email: str) -> Any:
    """A confirmation link whose sign-up a newer one of the same address replaced."""
    return message_page(
        409,
        _("This sign-up was replaced"),
        _(
            "%(email)s was signed up again after this link was sent. Only the link in the "
            "newest confirmation email confirms it, with the choices made then. Nothing was "
            "changed."
        )
        % {"email": email},
        {_("Sign up"): current_site().path("subscribe")},
    )


def _nothing_pending(site: Any, email: str, effective: MergedSubscriber | None) -> Any:
    """A confirmation link with no sign-up waiting: already confirmed, or nothing to do."""
    if effective is not None and effective.active:
        preferences = site.path("preferences", token=site.preferences_token(email))
        return message_page(
            200,
            _("Already confirmed"),
            _("%(email)s already receives the digest.") % {"email": email},
            {_("Your preferences"): preferences},
        )
    return message_page(
        404,
        _("Nothing to confirm"),
        _("There is no sign-up waiting for this address. Sign up again to get a new link."),
        {_("Sign up"): site.path("subscribe")},
    )


def confirm_view() -> Any:
    site = current_site()
    email, token, sign_up = confirmation_link()
    key = address_key(email)
    binding = f"confirm:{key}"
    if request.method == "POST":
        check_form(binding)
        limit("changes", key, _(_CHANGED_OFTEN))
        file_subscriber = site.file_subscriber(email)
        with open_state() as state:
            outcome = WebChanges(state).confirm(
                email,
                utcnow(),
                client(),
                keep=lambda pending, prefs: web_changes(file_subscriber, pending, prefs),
                nonce=sign_up,
            )
        log.info("confirm %s: %s", email, outcome)
        if outcome == "replaced":
            return replaced_page(email)
        preferences = site.preferences_token(email)
        return _back(site.path("preferences", token=preferences, done="confirmed"))
    with open_state() as state:
        changes = WebChanges(state)
        status = changes.sign_up_status(email, sign_up)
        record = changes.record(email)
        file_subscriber = site.file_subscriber(email)
        effective = merged_one(state, email, file_subscriber)
    pending = record.pending if record is not None else None
    if pending is not None:
        use_reader_language(pending.get("language"))
    else:
        speak_to(effective)
    if status == "replaced":
        return replaced_page(email)
    if record is None or pending is None:
        return _nothing_pending(site, email, effective)
    query = {"signup": sign_up} if sign_up else {}
    return page(
        "confirm.html",
        email=email,
        values=form_values(Subscriber(email=email))
        | pending
        | {
            "timezone": pending.get("timezone") or "",
            "language": pending.get("language") or current_language(),
        },
        binding=binding,
        action=with_language(site.path("confirm", token=token, **query)),
    )


def health_view() -> Any:
    return Response("ok\n", mimetype="text/plain")
