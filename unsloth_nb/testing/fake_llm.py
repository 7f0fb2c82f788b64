"""What the fake OpenAI and Anthropic servers share: the server, the call counter, and scripted judges.

A fake server answers the unmodified ``openai`` / ``anthropic`` SDK through its base-URL setting. What it
answers is a *behaviour*: a function from the call (its number, model and prompt) to a :class:`Reply` (text,
or an HTTP error with headers, after an optional delay). The judge behaviours read the prompt written by
``unsloth_nb/evaluate/rubric.md`` (the question, the reference, answers A and B) and answer with a verdict in
its format, ``[[A]]``, ``[[B]]`` or ``[[C]]``, so the whole judging path runs as it would against a real API.

Behaviours: :func:`picks_first`, :func:`prefers` (an answer the test recognises, e.g. the fine-tuned one),
:func:`key_facts` (the answer holding more of the reference's key facts), :func:`rate_limited`,
:func:`server_error`, :func:`malformed`, :func:`slow`. ``server.calls`` counts every HTTP request that reached
a model endpoint; a re-run served from the cache must leave it unchanged.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from unsloth_nb.testing.loopback_http import LoopbackHandler, LoopbackServer


@dataclass
class Call:
    """One model request as the fake saw it."""

    number: int  # 1 for the first request this server answered
    model: str
    prompt: str  # the last user message
    system: str = ""
    body: dict[str, Any] = field(default_factory=dict)


@dataclass
class Reply:
    text: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    error: str = ""


Behaviour = Callable[[Call], Reply]


# ---------------------------------------------------------------------------- prompt parsing
_SECTION = re.compile(
    r"\[The Start of (Question|Reference Answer|Assistant A's Answer|Assistant B's Answer)\]\n?(.*?)\n?\[The End of \1\]", re.S
)


def judged_parts(prompt: str) -> dict[str, str]:
    """``question``, ``reference`` (may be empty), ``a`` and ``b`` from a prompt in the rubric's layout."""
    parts = {"question": "", "reference": "", "a": "", "b": ""}
    names = {"Question": "question", "Reference Answer": "reference", "Assistant A's Answer": "a", "Assistant B's Answer": "b"}
    for match in _SECTION.finditer(prompt):
        parts[names[match.group(1)]] = match.group(2).strip()
    return parts


def verdict_text(choice: str, why: str = "") -> str:
    return f"{why or 'Compared both answers against the question.'}\n\n[[{choice}]]"


# ---------------------------------------------------------------------------- judge behaviours
def picks_first() -> Behaviour:
    """Always prefers answer A: under the two-game protocol every pair flips, so 50 % win rate and 0 % consistency."""
    return lambda call: Reply(verdict_text("A", "The first answer is better."))


def prefers(is_better: Callable[[str], bool]) -> Behaviour:
    """Prefers the answer for which ``is_better`` is true (both or neither: a tie)."""

    def behaviour(call: Call) -> Reply:
        parts = judged_parts(call.prompt)
        a, b = is_better(parts["a"]), is_better(parts["b"])
        return Reply(verdict_text("A" if a and not b else "B" if b and not a else "C"))

    return behaviour


_FACT = re.compile(r"[A-Z][a-z]+|\d+(?:[-–]\d+)?|[A-Z]{2,}")
_STOP = {"The", "A", "An", "In", "On", "At", "It", "He", "She", "They", "This", "That", "What", "Who", "Which", "Super", "Bowl"}


def key_facts_of(reference: str) -> set[str]:
    """Capitalised words and numbers of the reference, minus words every answer repeats from the question."""
    return {token for token in _FACT.findall(reference) if token not in _STOP}


def key_facts() -> Behaviour:
    """Deterministic judge: the answer that contains more of the reference's key facts wins; equal counts tie."""

    def behaviour(call: Call) -> Reply:
        parts = judged_parts(call.prompt)
        facts = key_facts_of(parts["reference"])
        score_a = sum(1 for fact in facts if fact in parts["a"])
        score_b = sum(1 for fact in facts if fact in parts["b"])
        choice = "A" if score_a > score_b else "B" if score_b > score_a else "C"
        return Reply(verdict_text(choice, f"A holds {score_a} and B {score_b} of {len(facts)} key facts."))

    return behaviour


def rate_limited(times: int = 1, retry_after: float = 1.0, then: Behaviour | None = None) -> Behaviour:
    """The first ``times`` requests get 429 with ``Retry-After``; after that ``then`` (default: picks_first)."""
    follow = then or picks_first()
    header = str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)

    def behaviour(call: Call) -> Reply:
        if call.number <= times:
            return Reply(status=429, headers={"Retry-After": header}, error="rate limit exceeded")
        return follow(call)

    return behaviour


def server_error(times: int | None = None, status: int = 500, then: Behaviour | None = None) -> Behaviour:
    """``status`` for the first ``times`` requests (None: for every request, a server that is down)."""
    follow = then or picks_first()

    def behaviour(call: Call) -> Reply:
        if times is None or call.number <= times:
            return Reply(status=status, error="internal server error")
        return follow(call)

    return behaviour


def malformed(times: int | None = None, then: Behaviour | None = None) -> Behaviour:
    """A rationale with no verdict in the required format (``times`` None: always)."""
    follow = then or picks_first()

    def behaviour(call: Call) -> Reply:
        if times is None or call.number <= times:
            return Reply("Both answers have merits. I would probably lean towards the first one, verdict: A.")
        return follow(call)

    return behaviour


def slow(seconds: float, times: int | None = None, then: Behaviour | None = None) -> Behaviour:
    """Answers after ``seconds`` (beyond the client's timeout) for the first ``times`` requests (None: always)."""
    follow = then or picks_first()

    def behaviour(call: Call) -> Reply:
        reply = follow(call)
        if times is None or call.number <= times:
            reply.delay = seconds
        return reply

    return behaviour


def fixed_latency(seconds: float, then: Behaviour | None = None) -> Behaviour:
    """Every answer after ``seconds``: a stand-in for a real API's latency in benchmarks."""
    follow = then or picks_first()

    def behaviour(call: Call) -> Reply:
        reply = follow(call)
        reply.delay = seconds
        return reply

    return behaviour


def count_tokens(text: str) -> int:
    """A stable stand-in for a tokenizer: about four characters a token."""
    return max(1, len(text) // 4)


# ---------------------------------------------------------------------------- the server
Route = Callable[["FakeLLMServer", LoopbackHandler, dict[str, Any]], None]


class FakeLLMServer:
    """A loopback server with a route table; subclasses add their API's routes (``routes[(method, path)]``).

    Use as a context manager. ``calls`` counts model requests (the routes that call the behaviour);
    ``requests`` keeps each request body, for tests that look at what the SDK sent.
    """

    #: count_tokens requests (free, so not in ``calls``) and the fake tokenizer's characters per token; only the
    #: Anthropic fake answers count_tokens, the others keep these defaults.
    token_counts: int = 0
    chars_per_token: int = 4

    api_key = "sk-fake-judge-key-for-tests"
    routes: ClassVar[dict[tuple[str, str], Route]] = {}
    #: Routes with an id in the path (``/v1/messages/batches/{id}``): (method, regex); the named groups
    #: reach the route as ``handler.path_params``.
    pattern_routes: ClassVar[list[tuple[str, str, Route]]] = []
    path_prefix = ""

    def __init__(self, behaviour: Behaviour | None = None, *, port: int = 0) -> None:
        self.behaviour: Behaviour = behaviour or picks_first()
        self.port = port
        self.calls = 0
        self.requests: list[dict[str, Any]] = []
        self.auth_headers: list[str] = []
        self._lock = threading.Lock()
        self._server: LoopbackServer | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeLLMServer:
        self._server = LoopbackServer(self.port, _handler_for(self))
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name=f"{type(self).__name__}", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path_prefix}"

    # ------------------------------------------------------------------ behaviour
    def reset(self, behaviour: Behaviour | None = None) -> None:
        with self._lock:
            self.calls = 0
            self.requests.clear()
            if behaviour is not None:
                self.behaviour = behaviour

    def answer(self, model: str, prompt: str, system: str, body: dict[str, Any], auth: str) -> Reply:
        with self._lock:
            self.calls += 1
            self.requests.append(body)
            self.auth_headers.append(auth)
            number = self.calls
        reply = self.behaviour(Call(number, model, prompt, system, body))
        if reply.delay:
            time.sleep(reply.delay)
        return reply


def _handler_for(server: FakeLLMServer) -> type[LoopbackHandler]:
    class Handler(LoopbackHandler):
        log_label = type(server).__name__

        def _route(self, method: str) -> None:
            path = self.path.split("?", 1)[0]
            route = type(server).routes.get((method, path))
            self.path_params: dict[str, str] = {}
            if route is None:
                for verb, pattern, candidate in type(server).pattern_routes:
                    found = re.fullmatch(pattern, path)
                    if verb == method and found:
                        route, self.path_params = candidate, found.groupdict()
                        break
            raw = self.read_body()
            if route is None:
                self.send_json(404, {"error": {"type": "not_found_error", "message": f"no route {method} {path}"}})
                return
            import json

            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                self.send_json(400, {"error": {"type": "invalid_request_error", "message": "body is not JSON"}})
                return
            route(server, self, body)

        def do_POST(self) -> None:
            self._route("POST")

        def do_GET(self) -> None:
            self._route("GET")

        def do_DELETE(self) -> None:
            self._route("DELETE")

    return Handler


def send_error(handler: LoopbackHandler, reply: Reply, error_type: str) -> None:
    handler.send_json(reply.status, {"error": {"type": error_type, "message": reply.error or "error"}}, reply.headers)


__all__ = [
    "Behaviour",
    "Call",
    "FakeLLMServer",
    "Reply",
    "count_tokens",
    "fixed_latency",
    "judged_parts",
    "key_facts",
    "key_facts_of",
    "malformed",
    "picks_first",
    "prefers",
    "rate_limited",
    "send_error",
    "server_error",
    "slow",
    "verdict_text",
]
