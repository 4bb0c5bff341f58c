"""A real OpenAI-compatible chat-completions server on loopback that "screens" records deterministically.

``litscreen llm-simulator`` runs it. It answers ``POST /v1/chat/completions`` (enough of the protocol for httpx
and the official ``openai`` client), ``GET /v1/models``, ``GET /v1/stats`` and ``DELETE /v1/stats`` (reset).

The decision comes from a lexical relevance score (app.llm.relevance) of the record in the user message
against the PICOS / criteria in the prompt, compared with a threshold that differs a little per model name,
plus a small deterministic per-(model, record) offset, so two simulated models sometimes disagree.

Knobs: latency (+ uniform jitter) before every answer, a rate of 5xx answers, a rate of 429 answers with
``Retry-After``, and a rate of malformed (non-JSON) output. Random knobs draw from one seeded generator.

Stats count EVERY chat-completions request received, including the ones answered with an error (5xx, 429,
malformed output or a bad request): ``calls_total`` and ``calls_by_model`` are requests, not successes;
``responses_by_status`` and ``malformed_total`` break them down, and ``max_calls_in_window`` is the largest
number of requests that arrived within any ``window`` seconds (query parameter, default 1.0);
``max_in_flight`` the most requests it was answering at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import threading
import time
import uuid
from bisect import bisect_right
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from app.llm import fulltext_simulator, sim_extraction
from app.llm.relevance import relevance

logger = logging.getLogger(__name__)

BASE_THRESHOLD = 0.65
UNCERTAIN_BAND = 0.015
MODELS = ("model-a", "model-b")  # what the README and the demo configure: SCREENING_MODELS=sim:model-a,sim:model-b

_PICOS_LINE = re.compile(r"^\s*([PICOS])\s*(?:\([^)]*\))?\s*:\s*(.+)$", re.MULTILINE)
_INCLUSION = re.compile(r"^\s*Inclusion criteria\s*:\s*(.+)$", re.MULTILINE | re.IGNORECASE)
_EXCLUSION = re.compile(r"^\s*Exclusion criteria\s*:\s*(.+)$", re.MULTILINE | re.IGNORECASE)
_TITLE = re.compile(r"^\s*Title\s*:\s*(.+)$", re.MULTILINE | re.IGNORECASE)
_ABSTRACT = re.compile(r"^\s*Abstract\s*:\s*(.*)\Z", re.MULTILINE | re.IGNORECASE | re.DOTALL)


@dataclass
class SimulatorKnobs:
    """Behaviour of the simulator; rates are probabilities per request."""

    latency: float = 0.0
    latency_jitter: float = 0.0
    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    retry_after: float = 1.0
    malformed_rate: float = 0.0
    malformed_repairable: bool = False   # a repair request (one with an earlier assistant turn) is never malformed
    wrong_quote_fields: tuple[str, ...] = ()   # full-text fields answered with a quote not in the document
    seed: int | None = None


def _unit_hash(*parts: str) -> float:
    """A deterministic number in [0, 1) from ``parts``."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def model_threshold(model: str) -> float:
    """The include threshold of a simulated model: the base threshold shifted by up to ±0.03 per model name."""
    return BASE_THRESHOLD + (_unit_hash("threshold", model) - 0.5) * 0.06


def parse_prompt(text: str) -> tuple[dict[str, str], str | None, str | None, str, str | None]:
    """PICOS, inclusion, exclusion, title and abstract found in a screening prompt (lenient)."""
    record_at = text.lower().rfind("title:")
    criteria_part = text[:record_at] if record_at >= 0 else text
    record_part = text[record_at:] if record_at >= 0 else text
    picos = {m.group(1): m.group(2).strip() for m in _PICOS_LINE.finditer(criteria_part)
             if not _is_placeholder(m.group(2))}
    inclusion = _INCLUSION.search(criteria_part)
    exclusion = _EXCLUSION.search(criteria_part)
    title = _TITLE.search(record_part)
    abstract = _ABSTRACT.search(record_part)
    return (
        picos,
        inclusion.group(1).strip() if inclusion and not _is_placeholder(inclusion.group(1)) else None,
        exclusion.group(1).strip() if exclusion and not _is_placeholder(exclusion.group(1)) else None,
        title.group(1).strip() if title else record_part.strip()[:500],
        abstract.group(1).strip() if abstract and not _is_placeholder(abstract.group(1)) else None,
    )


def _is_placeholder(value: str) -> bool:
    """The prompt's filler for a missing value ("not specified", "none given", "no abstract available")."""
    text = value.strip().lower().rstrip(".")
    return text in ("", "not specified", "none given", "none", "no abstract available", "n/a")


def judge(model: str, prompt_text: str) -> dict[str, Any]:
    """The simulated model's answer for a screening prompt: the strict JSON object the prompt asks for."""
    picos, inclusion, exclusion, title, abstract = parse_prompt(prompt_text)
    rel = relevance(picos, inclusion, exclusion, title, abstract)
    score = rel.score + (_unit_hash("noise", model, title) - 0.5) * 0.06
    threshold = model_threshold(model)
    margin = score - threshold
    if abs(margin) < UNCERTAIN_BAND:
        decision = "uncertain"
    elif margin > 0:
        decision = "include"
    else:
        decision = "exclude"
    confidence = round(min(0.99, 0.55 + abs(margin) * 2), 2)
    judgement = {}
    for element in "PICOS":
        strength = rel.elements.get(element)
        if strength is None:
            judgement[element] = "not assessed"
        elif strength >= 0.66:
            judgement[element] = "match"
        elif strength > 0:
            judgement[element] = "partial"
        else:
            judgement[element] = "no match"
    matched = sorted({t for hits in rel.matched_terms.values() for t in hits})[:8]
    reason = (f"Lexical relevance {score:.2f} vs threshold {threshold:.2f}; matched terms: "
              f"{', '.join(matched) if matched else 'none'}")
    if rel.exclusion_hits:
        reason += f"; exclusion terms in title: {', '.join(rel.exclusion_hits)}"
    return {"decision": decision, "reason": reason, "confidence": confidence, "picos": judgement}


def _count_tokens(text: str) -> int:
    """A rough token count (about 4 characters a token), as real APIs report in ``usage``."""
    return max(1, len(text) // 4)


class SimulatorState:
    """Counters and the seeded random source shared by the handler threads."""

    def __init__(self, knobs: SimulatorKnobs) -> None:
        self.knobs = knobs
        self.lock = threading.Lock()
        self.random = random.Random(knobs.seed)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.calls_total = 0
            self.calls_by_model: dict[str, int] = {}
            self.responses_by_status: dict[str, int] = {}
            self.malformed_total = 0
            self.arrivals: list[float] = []
            self.in_flight = 0
            self.max_in_flight = 0

    def record_call(self, model: str) -> None:
        with self.lock:
            self.calls_total += 1
            self.calls_by_model[model] = self.calls_by_model.get(model, 0) + 1
            self.arrivals.append(time.monotonic())

    def enter(self) -> None:
        """A request starts being answered (its latency runs)."""
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def record_status(self, status: int) -> None:
        with self.lock:
            self.responses_by_status[str(status)] = self.responses_by_status.get(str(status), 0) + 1

    def draw(self) -> float:
        with self.lock:
            return self.random.random()

    def max_calls_in_window(self, window: float) -> int:
        with self.lock:
            arrivals = list(self.arrivals)
        best = 0
        for i, start in enumerate(arrivals):
            best = max(best, bisect_right(arrivals, start + window, lo=i) - i)
        return best

    def snapshot(self, window: float) -> dict[str, Any]:
        with self.lock:
            data = {
                "calls_total": self.calls_total,
                "calls_by_model": dict(self.calls_by_model),
                "responses_by_status": dict(self.responses_by_status),
                "malformed_total": self.malformed_total,
                "max_in_flight": self.max_in_flight,
            }
        data["window"] = window
        data["max_calls_in_window"] = self.max_calls_in_window(window)
        return data


class SimulatorHandler(BaseHTTPRequestHandler):
    """One request of the OpenAI chat-completions protocol (HTTP/1.1 keep-alive)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True   # headers and body go out in separate writes: no 40 ms delayed-ACK stalls
    server: SimulatorServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        logger.debug("%s - %s", self.address_string(), format % args)

    # -- helpers -----------------------------------------------------------------------------------------
    def _send_json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _error(self, status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> None:
        self._send_json(status, {"error": {"message": message, "type": kind, "code": status}}, headers)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # -- routes ------------------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        url = urlparse(self.path)
        if url.path == "/v1/models":
            self._send_json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 0, "owned_by": "litscreen-simulator"} for m in MODELS
            ]})
        elif url.path == "/v1/stats":
            window = float(parse_qs(url.query).get("window", ["1.0"])[0])
            self._send_json(200, self.server.state.snapshot(window))
        elif url.path in ("/", "/healthz"):
            self._send_json(200, {"status": "ok"})
        else:
            self._error(404, f"no route {url.path}", "not_found")

    def do_DELETE(self) -> None:  # noqa: N802
        if urlparse(self.path).path == "/v1/stats":
            self.server.state.reset()
            self._send_json(200, {"reset": True})
        else:
            self._error(404, "no route", "not_found")

    def do_POST(self) -> None:  # noqa: N802
        path = urlparse(self.path).path
        body = self._read_body()
        if path != "/v1/chat/completions":
            self._error(404, f"no route {path}", "not_found")
            return
        try:
            request = json.loads(body or b"{}")
            model = str(request["model"])
            messages = request["messages"]
            if not isinstance(messages, list) or not messages:
                raise ValueError("messages must be a non-empty list")
        except (ValueError, KeyError, TypeError) as exc:
            self.server.state.record_call("<invalid>")
            self.server.state.record_status(400)
            self._error(400, f"invalid request: {exc}", "invalid_request_error")
            return
        state = self.server.state
        knobs = state.knobs
        state.record_call(model)
        delay = knobs.latency + (state.draw() * knobs.latency_jitter if knobs.latency_jitter else 0.0)
        state.enter()
        try:
            if delay > 0:
                time.sleep(delay)
        finally:
            state.leave()
        draw = state.draw()
        if draw < knobs.error_rate:
            state.record_status(500)
            self._error(500, "simulated server error", "server_error")
            return
        if draw < knobs.error_rate + knobs.rate_limit_rate:
            state.record_status(429)
            self._error(429, "simulated rate limit", "rate_limit_error",
                        {"Retry-After": f"{knobs.retry_after:g}"})
            return
        is_repair = any(m.get("role") == "assistant" for m in messages if isinstance(m, dict))
        first_user = next((str(m.get("content", "")) for m in messages
                           if isinstance(m, dict) and m.get("role") == "user"), "")
        malformed = state.draw() < knobs.malformed_rate and not (knobs.malformed_repairable and is_repair)
        if malformed:
            with state.lock:
                state.malformed_total += 1
            content = 'Sure! Here is my assessment: {"decision": "include", "reason": "looks relevant"'
        elif fulltext_simulator.handles(messages):
            content = fulltext_simulator.answer(model, messages, knobs.wrong_quote_fields)
        else:
            # task kinds with their own prompts answer first (None: not theirs), else the screening judgement
            extraction = sim_extraction.answer(model, messages)
            content = json.dumps(extraction if extraction is not None else judge(model, first_user))
        prompt_text = "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
        usage = {"prompt_tokens": _count_tokens(prompt_text), "completion_tokens": _count_tokens(content)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        state.record_status(200)
        self._send_json(200, {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "litscreen-simulator",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": usage,
        })


class SimulatorServer(ThreadingHTTPServer):
    """A thread-per-connection HTTP server holding the simulator state."""

    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], knobs: SimulatorKnobs) -> None:
        super().__init__(address, SimulatorHandler)
        self.state = SimulatorState(knobs)


def serve(host: str, port: int, knobs: SimulatorKnobs) -> None:
    """Run the simulator until interrupted."""
    server = SimulatorServer((host, port), knobs)
    actual_port = server.server_address[1]
    logger.info("LLM simulator listening on http://%s:%s/v1 (%s)", host, actual_port, knobs)
    print(f"llm-simulator listening on http://{host}:{actual_port}/v1", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
