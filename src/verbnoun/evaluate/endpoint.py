"""One chat completion from an OpenAI-compatible endpoint, with every transient failure retried.

The one place that talks to an endpoint (``eval --model openai`` in both protocols, ``--open-vocab``,
``--two-stage`` and ``sft captions``). The ``openai`` client sends the request (key, address,
headers) with its own retries off; this module reads the raw reply and decides:

* **transient** (retried): HTTP 408, 409, 429 and 5xx; a timeout; a connection reset or closed
  in the middle of the body; HTTP 200 whose body is not JSON (the HTML page of a proxy whose
  backend hiccuped); JSON without ``choices``; a choice whose content is ``null``; a truncated
  body or event stream (JSON cut short, a stream without its end).
* **refused** (:class:`EndpointRefused`, never retried, stops the run with one line): any other
  4xx (400 bad request, 401 bad key, 403, 404 unknown model or address, 413, 422) and a 429
  that says the quota is used up.

Retries wait ``first_wait * 2**(n-1)`` seconds (at most ``max_one_wait``), half of it jittered,
and never less than the server's ``Retry-After`` (seconds or an HTTP date; ``retry-after-ms``
too). A question gets at most ``tries`` tries and ``max_wait`` seconds of waiting in all; a
``Retry-After`` beyond what is left ends its tries at once. Then :class:`RequestFailed` says the
kind of the last failure, its HTTP status and how many tries were made.
"""

from __future__ import annotations

import email.utils
import json
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from verbnoun.errors import VerbnounError

KINDS = (
    "rate_limit",  # HTTP 429
    "server_error",  # HTTP 5xx
    "timeout",  # no reply in time, or HTTP 408
    "conflict",  # HTTP 409
    "connection",  # reset, refused, or closed in the middle of the body
    "not_json",  # HTTP 200 whose body is not JSON (a proxy's HTML page)
    "no_choices",  # JSON without choices[0].message
    "null_content",  # a choice whose content is null
    "truncated",  # JSON or an event stream cut short
)
TRANSIENT_STATUS = {408: "timeout", 409: "conflict", 429: "rate_limit"}
_KEYLIKE = re.compile(r"\b(sk|key)-[A-Za-z0-9_\-*.]{4,}")


class APIAnswerError(VerbnounError):
    """The endpoint failed or answered something that is not a chat completion."""


class RequestFailed(APIAnswerError):
    """A request whose tries are used up; the run records it as failed and goes on."""

    def __init__(self, label: str, failure: Failure) -> None:
        self.failure = failure
        status = f" (HTTP {failure.status})" if failure.status is not None else ""
        super().__init__(
            f"{label}: {failure.kind}{status} after {failure.attempts} tries "
            f"and {failure.waited:.1f} s of waiting: {failure.message}"
        )


class EndpointRefused(VerbnounError):
    """A reply no retry can change (bad key, unknown model, bad request): the run stops."""


class EndpointDown(VerbnounError):
    """Too many questions in a row failed: the run stops, keeping everything it has."""


class Cancelled(Exception):
    """The caller gave up on a request while it waited to be retried."""


class TransientError(Exception):
    """One try that failed in a way worth retrying."""

    def __init__(
        self, kind: str, message: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.kind, self.status, self.retry_after, self.message = kind, status, retry_after, message
        self.usage: dict | None = None


@dataclass
class Failure:
    """What a failed request records: the last failure's kind and HTTP status, tries made,
    seconds waited between them, and a short message."""

    kind: str
    status: int | None
    attempts: int
    waited: float
    message: str

    def to_record(self) -> dict:
        return {**asdict(self), "waited": round(self.waited, 3)}


# failed requests (questions) in a row after which a run stops, keeping everything (0: never)
MAX_CONSECUTIVE_FAILURES = 20


@dataclass(frozen=True)
class RetryPolicy:
    """How a request is retried: ``tries`` in all, ``max_wait`` seconds of waiting in all."""

    tries: int = 6
    max_wait: float = 300.0
    first_wait: float = 1.0
    max_one_wait: float = 60.0
    request_timeout: float = 120.0

    def check(self) -> RetryPolicy:
        if self.tries < 1:
            raise VerbnounError(f"--tries must be at least 1, got {self.tries}")
        for name in ("max_wait", "first_wait", "max_one_wait"):
            if getattr(self, name) < 0:
                raise VerbnounError(f"--{name.replace('_', '-')} must not be negative")
        if self.request_timeout <= 0:
            raise VerbnounError("--request-timeout must be positive")
        return self

    def settings(self) -> dict:
        return asdict(self)

    def backoff(self, retry: int, rng: random.Random) -> float:
        """The wait before retry number ``retry`` (1-based): exponential, half jittered."""
        full = min(self.max_one_wait, self.first_wait * 2 ** (retry - 1))
        return full / 2 + rng.uniform(0, full / 2)


@dataclass
class Completion:
    """A chat reply's text, its token usage (summed over the tries that reported one), tries."""

    content: str
    usage: dict | None = None
    attempts: int = 1
    waited: float = 0.0


@dataclass
class TransportStats:
    """Counters shared by the threads of one adapter (read by the progress bar)."""

    requests: int = 0  # tries sent
    retries: int = 0
    retrying: int = 0  # requests waiting to be retried right now
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **changes: int) -> None:
        with self.lock:
            for name, change in changes.items():
                setattr(self, name, getattr(self, name) + change)


def retry_after(headers) -> float | None:
    """Seconds the server asks to wait: ``retry-after-ms``, or ``Retry-After`` as seconds or an
    HTTP date; ``None`` when absent or unreadable."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def redact(text: str, secret: str | None = None) -> str:
    """One line of at most 200 characters with the key (and anything key-like) blanked out."""
    if secret:
        text = text.replace(secret, "[key]")
    text = _KEYLIKE.sub("[key]", " ".join(str(text).split()))
    return text if len(text) <= 200 else text[:197] + "..."


def read_reply(text: str, content_type: str = "") -> tuple[str, dict | None]:
    """The content and usage of a chat-completion body (JSON, or an event stream that a proxy
    sent instead); :class:`TransientError` when the body is not a complete completion."""
    stripped = text.lstrip()
    if "text/event-stream" in content_type or stripped.startswith("data:"):
        return _read_event_stream(text)
    try:
        data = json.loads(text)
    except ValueError:
        kind = "truncated" if stripped.startswith(("{", "[")) else "not_json"
        what = "cut short" if kind == "truncated" else f"not JSON: {stripped[:60]!r}"
        raise TransientError(kind, f"HTTP 200 but the body is {what}", 200) from None
    if not isinstance(data, dict):
        raise TransientError("not_json", "HTTP 200 but the body is not a JSON object", 200)
    usage = _usage(data.get("usage"))
    choices = data.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    message = first.get("message") if isinstance(first, dict) else None
    if not isinstance(message, dict):
        error = data.get("error")
        said = f": {error.get('message')}" if isinstance(error, dict) else ""
        failure = TransientError("no_choices", f"HTTP 200 but no choices{said}", 200)
        failure.usage = usage
        raise failure
    content = message.get("content")
    if isinstance(content, list):  # content parts: their text, in order
        texts = [p.get("text") for p in content if isinstance(p, dict)]
        content = "".join(t for t in texts if isinstance(t, str)) if any(texts) else None
    if content is None and isinstance(message.get("refusal"), str):
        content = message["refusal"]  # the model declined: an answer (unparsed), not a fault
    if not isinstance(content, str):
        failure = TransientError("null_content", "HTTP 200 but the choice has no content", 200)
        failure.usage = usage
        raise failure
    return content, usage


def _read_event_stream(text: str) -> tuple[str, dict | None]:
    parts: list[str] = []
    usage, finished = None, False
    for line in text.splitlines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            finished = True
            break
        try:
            chunk = json.loads(data)
        except ValueError:
            raise TransientError("truncated", "event stream with a cut-short event", 200) from None
        if not isinstance(chunk, dict):
            raise TransientError("not_json", "event stream with an event that is not an object")
        usage = _usage(chunk.get("usage")) or usage
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta") or choice.get("message") or {}
            if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                parts.append(delta["content"])
            if choice.get("finish_reason"):
                finished = True
    if not finished:
        raise TransientError("truncated", "event stream ended before its last event", 200)
    return "".join(parts), usage


def _usage(value) -> dict | None:
    if not isinstance(value, dict):
        return None
    prompt, completion = value.get("prompt_tokens"), value.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return {"prompt_tokens": prompt, "completion_tokens": completion}


def add_usage(total: dict | None, more: dict | None) -> dict | None:
    if more is None:
        return total
    if total is None:
        return dict(more)
    return {key: total.get(key, 0) + more.get(key, 0) for key in set(total) | set(more)}


def send_once(client, body: dict, secret: str | None = None) -> tuple[str, dict | None]:
    """One try of ``body`` with an ``openai`` client (its own retries off): content and usage,
    or :class:`TransientError` / :class:`EndpointRefused`."""
    import openai

    try:
        raw = client.chat.completions.with_raw_response.create(**body)
    except openai.APITimeoutError:
        raise TransientError("timeout", "no reply within the request timeout") from None
    except openai.APIConnectionError as error:
        cause = error.__cause__ or error
        raise TransientError("connection", redact(f"{type(cause).__name__}: {cause}")) from None
    except openai.APIStatusError as error:
        raise classify_status(error.status_code, error.response, secret) from None
    response = raw.http_response
    if not 200 <= response.status_code < 300:  # pragma: no cover - the client raises first
        raise classify_status(response.status_code, response, secret)
    return read_reply(response.text, response.headers.get("content-type", ""))


def classify_status(status: int, response, secret: str | None = None) -> Exception:
    """The error for an HTTP status: :class:`TransientError` or :class:`EndpointRefused`."""
    try:
        data = response.json()
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    if isinstance(error, dict):
        said = str(error.get("message") or "")
    else:
        said = str(error) if error else getattr(response, "text", "")[:200]
    said = redact(said or "", secret)
    if status in TRANSIENT_STATUS and code != "insufficient_quota":
        return TransientError(
            TRANSIENT_STATUS[status],
            f"HTTP {status}: {said}",
            status,
            retry_after(response.headers),
        )
    if status >= 500:
        return TransientError("server_error", f"HTTP {status}: {said}", status,
                              retry_after(response.headers))  # fmt: skip
    hint = {
        401: " (check the API key)", 403: " (the key may not have access to this model)",
        404: " (check --base-url and --api-model)", 429: " (the account's quota is used up)",
    }.get(status, "")  # fmt: skip
    return EndpointRefused(f"the endpoint refused the request: HTTP {status}{hint}: {said}")


def with_retries(
    attempt: Callable[[], tuple[str, dict | None]],
    policy: RetryPolicy,
    *,
    label: str = "request",
    stats: TransportStats | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> Completion:
    """Call ``attempt`` until it succeeds, retrying :class:`TransientError` as ``policy`` says;
    :class:`RequestFailed` when the tries or the wait are used up. Anything else propagates."""
    rng = rng or random.Random()
    stats = stats or TransportStats()
    waited, usage = 0.0, None
    for number in range(1, policy.tries + 1):
        stats.add(requests=1)
        try:
            content, more = attempt()
        except TransientError as error:
            usage = add_usage(usage, error.usage)
            last = error
        else:
            return Completion(content, add_usage(usage, more), number, waited)
        if number == policy.tries:
            break
        left = policy.max_wait - waited
        backoff = policy.backoff(number, rng)
        if backoff > 0 and left <= 0:
            break  # this question has waited all it may
        delay = min(backoff, left)
        if last.retry_after is not None:
            if last.retry_after > left:
                break  # the server asks for longer than this question may still wait
            delay = max(delay, last.retry_after)
        stats.add(retrying=1, retries=1)
        try:
            sleep(delay)
        finally:
            stats.add(retrying=-1)
        waited += delay
    failure = Failure(last.kind, last.status, number, waited, redact(last.message))
    error = RequestFailed(label, failure)
    error.usage = usage  # type: ignore[attr-defined]
    raise error


def parse_price(text: str | None) -> tuple[float, float] | None:
    """``--price-per-mtok IN,OUT`` -> (input, output) price per million tokens."""
    if not text:
        return None
    try:
        price_in, price_out = (float(part) for part in text.split(","))
    except ValueError:
        raise VerbnounError(
            f"--price-per-mtok must look like IN,OUT (e.g. 2.5,10), got {text!r}"
        ) from None
    if price_in < 0 or price_out < 0:
        raise VerbnounError(f"--price-per-mtok {text}: prices must not be negative")
    return price_in, price_out
