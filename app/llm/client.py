"""OpenAI-compatible chat-completions client on httpx, one per provider.

Per provider: a timeout, a semaphore bounding requests in flight, a requests-per-minute limiter, and retries
(tenacity) with exponential backoff and jitter on 429, 5xx, timeouts and connection errors, waiting at least
what ``Retry-After`` asks. Other 4xx answers are not retried (``LLMRequestError``). When the retry budget is
spent, ``LLMUnavailable`` is raised. The API key is only ever sent in the Authorization header: every message
this module produces passes through ``redact`` so the key cannot leak into logs, errors or responses.
"""

from __future__ import annotations

import functools
import json
import logging
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from app.llm.limits import ProcessLimits, ProviderLimits
from app.llm.providers import ProviderSettings

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}
MAX_RETRY_AFTER_SECONDS = 300.0


class LLMUnavailable(Exception):
    """A provider kept failing transiently (429/5xx/timeouts/connection errors) beyond its retry budget."""


class LLMRequestError(Exception):
    """A provider refused the request (a 4xx other than 408/409/425/429) or answered something unusable."""


class TransientLLMError(Exception):
    """One failed attempt that is worth retrying; ``retry_after`` is the server's wish, if any."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class ChatCompletion:
    """The useful part of one chat-completions answer."""

    content: str
    prompt_tokens: int
    completion_tokens: int
    raw: str          # the response body as received


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry transient failures."""

    max_attempts: int = 8
    initial_wait: float = 1.0
    max_wait: float = 60.0
    jitter: float = 1.0


def redact(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` (and any Bearer token) replaced by ``***``."""
    if secret:
        text = text.replace(secret, "***")
    return text


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), capped; None if absent/invalid."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, min(seconds, MAX_RETRY_AFTER_SECONDS))


def _text(response: httpx.Response) -> str:
    """``response.text``, without its charset lookup when the Content-Type names no charset (then UTF-8)."""
    if "charset" in response.headers.get("content-type", "").lower() or not isinstance(response.default_encoding, str):
        return response.text
    return response.content.decode(response.default_encoding, errors="replace")


class _WaitHonouringRetryAfter:
    """Exponential backoff with jitter, but never shorter than the server's Retry-After."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.backoff = (wait_exponential(multiplier=policy.initial_wait, max=policy.max_wait)
                        + wait_random(0, policy.jitter))

    def __call__(self, retry_state: RetryCallState) -> float:
        wait = self.backoff(retry_state)
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, TransientLLMError) and exc.retry_after is not None:
            wait = max(wait, exc.retry_after)
        return wait


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """The process's one TLS context for every provider client (httpx's defaults: certifi, or ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR``). Building a context loads the whole CA bundle, about 0.8 MB of OpenSSL memory that Python's
    garbage collector cannot see; with a context per client, and clients per batch, a pool child's RSS grew with
    every batch it ran. An ``SSLContext`` is safe to share between threads."""
    return httpx.create_ssl_context()


def _log_retry(provider_name: str, retry_state: RetryCallState) -> None:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    logger.warning("%s: attempt %d failed (%s); retrying in %.2f s", provider_name,
                   retry_state.attempt_number, exc, retry_state.upcoming_sleep)


class ChatClient:
    """Chat completions against one provider; thread-safe.

    No reference cycle leads back to a client (its retry callback holds the provider's name, not the client), so
    a closed client is freed as soon as its batch drops it, not at the next full garbage collection."""

    def __init__(self, provider: ProviderSettings, retry: RetryPolicy | None = None,
                 transport: httpx.BaseTransport | None = None, limits: ProviderLimits | None = None) -> None:
        self.provider = provider
        self.retry = retry or RetryPolicy()
        self.limits = limits or ProcessLimits(provider.rpm, provider.max_concurrency)
        headers = {"Content-Type": "application/json", "User-Agent": "litscreen"}
        if provider.api_key:
            headers["Authorization"] = f"Bearer {provider.api_key}"
        self._http = httpx.Client(
            base_url=provider.base_url,
            headers=headers,
            timeout=httpx.Timeout(provider.timeout, connect=min(10.0, provider.timeout)),
            verify=shared_ssl_context(),
            limits=httpx.Limits(max_connections=provider.max_concurrency,
                                max_keepalive_connections=provider.max_concurrency),
            transport=transport,
        )
        self._url = httpx.URL(f"{provider.base_url.rstrip('/')}/chat/completions")
        # the transport (connection pool, or the proxy mount for this URL) is fixed per client: resolve it once
        # and send to it directly, skipping the client's per-request auth/redirect/hook layers (none are used)
        transport_for_url = getattr(self._http, "_transport_for_url", None)
        self._transport: httpx.BaseTransport | None = transport_for_url(self._url) if transport_for_url else None
        # one Retrying per client: tenacity keeps its per-call state in thread-locals, so threads may share it
        self._retrying = Retrying(
            retry=retry_if_exception_type(TransientLLMError),
            stop=stop_after_attempt(self.retry.max_attempts),
            wait=_WaitHonouringRetryAfter(self.retry),
            before_sleep=functools.partial(_log_retry, provider.name),
            reraise=True,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def complete(self, model: str, messages: list[dict[str, str]], params: dict[str, Any]) -> ChatCompletion:
        """One chat completion, retried on transient failures; LLMUnavailable when the budget is spent."""
        try:
            return self._retrying(self._attempt, model, messages, params)
        except TransientLLMError as exc:
            raise LLMUnavailable(
                f"{self.provider.name}:{model} unavailable after {self.retry.max_attempts} attempts: {exc}"
            ) from None

    def _attempt(self, model: str, messages: list[dict[str, str]], params: dict[str, Any]) -> ChatCompletion:
        body = {"model": model, "messages": messages, **params}
        with self.limits.request():
            try:
                response = self._post(body)
            except httpx.TimeoutException as exc:
                raise TransientLLMError(f"timeout after {self.provider.timeout:g} s ({type(exc).__name__})") from None
            except httpx.TransportError as exc:
                raise TransientLLMError(
                    redact(f"connection error: {type(exc).__name__}: {exc}", self.provider.api_key)
                ) from None
        return self._parse(response)

    def _post(self, body: dict[str, Any]) -> httpx.Response:
        """POST ``body`` as JSON (encoded as httpx's ``json=`` does) and read the whole answer."""
        if self._transport is None:
            return self._http.post(self._url, json=body)
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
        request = self._http.build_request("POST", self._url, content=content)
        response = self._transport.handle_request(request)
        response.request = request
        try:
            response.read()
        except BaseException:
            response.close()
            raise
        if "set-cookie" in response.headers:
            self._http.cookies.extract_cookies(response)
        return response

    def _parse(self, response: httpx.Response) -> ChatCompletion:
        key = self.provider.api_key
        if response.status_code in RETRYABLE_STATUS or response.status_code >= 500:
            raise TransientLLMError(
                redact(f"HTTP {response.status_code}: {response.text[:200]}", key),
                parse_retry_after(response.headers.get("Retry-After")),
            )
        if response.status_code >= 400:
            raise LLMRequestError(redact(f"HTTP {response.status_code}: {response.text[:300]}", key))
        raw = _text(response)
        try:
            data = json.loads(raw)
            content = data["choices"][0]["message"]["content"] or ""
            usage = data.get("usage") or {}
            return ChatCompletion(
                content=str(content),
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                raw=raw,
            )
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise LLMRequestError(redact(f"unreadable chat-completions answer ({exc}): {raw[:200]}", key)) from None
