"""Where an API key may be sent: the egress policy checked before any remote call.

A judge spec names a key *variable* (``api_key_env``) and an endpoint
(``api_base``); the process that judges reads the variable from its own
environment. On a fleet the spec comes from whoever submitted, so without a
check a submitter could make workers send any of their variables
(``JUDGEQ_LEDGER_URL``, a provider key) to any host. The policy, held by the
process that judges, decides:

- a key variable may go only to the endpoints listed for it. The built-in
  list pairs each well-known provider's key with that provider's own base URL
  (``OPENAI_API_KEY`` -> ``https://api.openai.com/v1``, see :data:`PROVIDERS`);
  a judge without ``api_base`` goes to its provider's default endpoint, which
  counts as that provider's base URL. The operator adds or replaces entries
  (``JUDGEQ_KEY_ENDPOINTS`` on workers, see :meth:`EgressPolicy.with_entries`).
- ``JUDGEQ_*`` variables are judgeq's own settings (ledger and broker URLs with
  their passwords): never a key, never listed, never sent.
- a judge without ``api_key_env`` sends a placeholder key, never nothing (except a
  listed cloud model, next item):
  given no key, litellm would read ``OPENAI_API_KEY`` (and others) from the
  environment itself. With a custom ``api_base`` its model must belong to a
  provider whose client sends only the key it is given (:data:`KEY_ONLY_PROVIDERS`),
  not credentials it finds on the machine (AWS, Google, Azure identities).
- a judge with neither ``api_key_env`` nor ``api_base`` is refused unless its
  provider sends nothing but the placeholder (:data:`KEY_ONLY_PROVIDERS`) or
  the operator listed that model or provider (``JUDGEQ_CLOUD_MODELS``, see
  :meth:`EgressPolicy.with_cloud_models`): every other litellm provider may
  authenticate with the worker's *own* cloud identity, so the worker's account
  would pay for whatever a submitter asks. Found in litellm 1.102's code
  (:data:`AMBIENT_PROVIDERS`); the rule is the allow-list, not this list, so a
  provider litellm adds later, or a model litellm maps to a cloud without a
  prefix (``gemini-pro`` is vertex_ai, ``anthropic.claude-v2`` is bedrock), is
  refused too.
- ``params`` (litellm arguments) are limited to generation settings
  (:data:`SAFE_PARAMS`): other litellm arguments can redirect the call, add
  credentials or callbacks that report elsewhere.

A *trusted* route (:meth:`EgressPolicy.trusting`) skips the other checks: embedded
mode trusts the judges of the judgeq.toml its own process loaded, since the
person running it already holds both the config and the environment. Judges
read back from a shared ledger (``judgeq resume``) are trusted only when they
match one of those.

A refusal is a :class:`EgressRefused` naming the judge, what was asked and
what to do; the caller records it on every row (``error_kind = "forbidden"``)
and sends nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import unquote, urlsplit

from .errors import EgressConfigError, EgressRefused

if TYPE_CHECKING:
    from .spec import LlmJudgeSpec

#: The key sent when a judge names no key variable, so that litellm never looks for one itself.
PLACEHOLDER_KEY = "judgeq-no-key"

#: Variables with this prefix are judgeq's own settings; none is ever sent anywhere.
OWN_PREFIX = "JUDGEQ_"

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Provider:
    """A well-known provider: litellm's name for it, its key variable and its own base URL."""

    name: str
    key_env: str
    base_url: str


#: Built-in pairs: each provider's key may go to that provider's base URL (or its default endpoint).
PROVIDERS: tuple[Provider, ...] = (
    Provider("openai", "OPENAI_API_KEY", "https://api.openai.com/v1"),
    Provider("text-completion-openai", "OPENAI_API_KEY", "https://api.openai.com/v1"),
    Provider("anthropic", "ANTHROPIC_API_KEY", "https://api.anthropic.com"),
    Provider("mistral", "MISTRAL_API_KEY", "https://api.mistral.ai/v1"),
    Provider("groq", "GROQ_API_KEY", "https://api.groq.com/openai/v1"),
    Provider("deepseek", "DEEPSEEK_API_KEY", "https://api.deepseek.com"),
    Provider("xai", "XAI_API_KEY", "https://api.x.ai"),
    Provider("together_ai", "TOGETHERAI_API_KEY", "https://api.together.ai"),
    Provider("openrouter", "OPENROUTER_API_KEY", "https://openrouter.ai/api/v1"),
    Provider("gemini", "GEMINI_API_KEY", "https://generativelanguage.googleapis.com"),
)

#: litellm providers whose client authenticates with the key it is given and nothing else
#: (checked in litellm 1.102: an explicit api_key wins over every environment fallback).
#: Only these may be pointed at an endpoint that no operator listed.
KEY_ONLY_PROVIDERS: frozenset[str] = frozenset(
    {p.name for p in PROVIDERS} | {"hosted_vllm", "ollama", "ollama_chat", "lm_studio"}
)

#: litellm providers that authenticate with credentials the machine holds rather than the key they are given
#: (read in litellm 1.102.4): boto3's chain (env, ~/.aws, instance or task role) for bedrock and sagemaker;
#: Google's application default credentials for vertex_ai and gdc; Entra ID (AZURE_CLIENT_ID/_SECRET/_TENANT_ID,
#: AZURE_AD_TOKEN, a managed identity) for azure and azure_ai; the databricks SDK's default auth; OCI_* signing
#: keys; SAP AI Core's service key (env or ~/.aicore); GitHub Copilot's OAuth token file (~/.config/litellm).
#: Documentation of why the keyless rule exists: the rule itself is :data:`KEY_ONLY_PROVIDERS`.
AMBIENT_PROVIDERS: frozenset[str] = frozenset(
    {"bedrock", "bedrock_mantle", "sagemaker", "sagemaker_chat", "vertex_ai", "vertex_ai_beta", "gdc", "azure",
     "azure_text", "azure_ai", "databricks", "oci", "sap", "github_copilot"}
)

#: litellm arguments a judge's ``params`` may set when it is not trusted: generation settings only.
SAFE_PARAMS: frozenset[str] = frozenset(
    {"max_tokens", "max_completion_tokens", "top_p", "top_k", "seed", "stop", "presence_penalty",
     "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "n", "response_format",
     "reasoning_effort"}
)


@dataclass(frozen=True)
class Endpoint:
    """A parsed base URL: scheme, host, port and path, compared part by part (never as text)."""

    scheme: str
    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        """The endpoint of ``url``; ValueError saying what is wrong with it."""
        parts = urlsplit(url.strip())
        if parts.scheme.lower() not in ("http", "https"):
            raise ValueError("must start with http:// or https://")
        if not parts.hostname:
            raise ValueError("has no host")
        if parts.username is not None or parts.password is not None:
            raise ValueError("must not hold a user name or password")
        if parts.query or parts.fragment:
            raise ValueError("must not hold a query (?…) or fragment (#…)")
        try:
            port = parts.port
        except ValueError:
            raise ValueError("has an invalid port") from None
        segments = [unquote(s) for s in parts.path.split("/")]
        if any(s in (".", "..") or "\\" in s or "/" in s for s in segments):
            raise ValueError("must not hold '.', '..', encoded '/' or '\\' in its path")
        scheme = parts.scheme.lower()
        path = "/".join(s for s in parts.path.split("/") if s)
        return cls(scheme, parts.hostname.lower().rstrip("."), port or (443 if scheme == "https" else 80),
                   "/" + path if path else "")

    def covers(self, other: Endpoint) -> bool:
        """Whether ``other`` is this endpoint or below it (whole path segments)."""
        return (self.scheme, self.host, self.port) == (other.scheme, other.host, other.port) and (
            other.path == self.path or other.path.startswith(self.path + "/")
        )

    def __str__(self) -> str:
        default = 443 if self.scheme == "https" else 80
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{self.host}{port}{self.path}"


@dataclass(frozen=True)
class Route:
    """What decides where a judge's calls go and what they carry."""

    model: str
    api_base: str | None
    api_key_env: str | None
    params: str  # canonical JSON

    @classmethod
    def of(cls, spec: LlmJudgeSpec) -> Route:
        return cls(spec.model, spec.api_base, spec.api_key_env, json.dumps(spec.params, sort_keys=True))


@dataclass(frozen=True)
class EgressPolicy:
    """Which key variable may go to which endpoints, and which routes are trusted whole.

    Build it with :meth:`defaults`, then :meth:`with_entries` (the operator's
    list) and, in embedded mode, :meth:`trusting` (the process's own config).
    """

    keys: Mapping[str, tuple[Endpoint, ...]]
    trusted: frozenset[Route] = field(default_factory=frozenset)
    cloud: frozenset[str] = frozenset()  # models ("bedrock/x") and providers ("bedrock") the operator listed

    @classmethod
    def defaults(cls) -> EgressPolicy:
        """Each well-known provider's key to that provider's own base URL, and nothing else."""
        keys: dict[str, tuple[Endpoint, ...]] = {}
        for provider in PROVIDERS:
            endpoint = Endpoint.parse(provider.base_url)
            if endpoint not in keys.get(provider.key_env, ()):
                keys[provider.key_env] = (*keys.get(provider.key_env, ()), endpoint)
        return cls(keys=keys)

    def with_entries(self, entries: Mapping[str, Iterable[str]]) -> EgressPolicy:
        """This policy with ``entries`` (variable -> base URLs) replacing the lists of those variables.

        An empty list forbids the variable. Raises EgressConfigError naming the
        bad entry: a ``JUDGEQ_`` variable, a name that is not a variable name,
        or a URL that is not a plain http(s) base URL.
        """
        keys = dict(self.keys)
        for name, urls in entries.items():
            if not _ENV_NAME.fullmatch(name):
                raise EgressConfigError(f"{name!r} is not an environment variable name; use one like OPENAI_API_KEY")
            if name.upper().startswith(OWN_PREFIX):
                raise EgressConfigError(
                    f"{name} is one of judgeq's own settings and can never be sent as a key; remove it"
                )
            if isinstance(urls, str):
                raise EgressConfigError(f"{name}: give a list of base URLs, like [\"{urls}\"]")
            endpoints = []
            for url in urls:
                try:
                    endpoints.append(Endpoint.parse(str(url)))
                except ValueError as exc:
                    raise EgressConfigError(f"{name}: endpoint {url!r} {exc}; give a base URL like "
                                            "https://llm.internal:8000/v1") from None
            keys[name] = tuple(endpoints)
        return EgressPolicy(keys=keys, trusted=self.trusted, cloud=self.cloud)

    def with_cloud_models(self, entries: Iterable[str]) -> EgressPolicy:
        """This policy also letting keyless judges of ``entries`` run on the worker's own cloud identity.

        An entry is a litellm provider (``bedrock``: every model litellm routes
        there) or one model string exactly as a judge writes it
        (``vertex_ai/gemini-1.5-pro``). EgressConfigError for an entry that is
        neither (blank, or holding spaces).
        """
        listed = set(self.cloud)
        for entry in entries:
            if not isinstance(entry, str) or not entry.strip() or any(c.isspace() for c in entry):
                raise EgressConfigError(f"{entry!r} is not a provider or model; list names like \"bedrock\" or "
                                        "\"vertex_ai/gemini-1.5-pro\"")
            listed.add(entry)
        return EgressPolicy(keys=self.keys, trusted=self.trusted, cloud=frozenset(listed))

    def trusting(self, specs: Iterable[LlmJudgeSpec]) -> EgressPolicy:
        """This policy, also trusting the routes of ``specs`` whole (the process's own config)."""
        return EgressPolicy(keys=self.keys, trusted=self.trusted | {Route.of(s) for s in specs}, cloud=self.cloud)

    def cloud_identity(self, spec: LlmJudgeSpec, provider: str | None) -> bool:
        """Whether ``spec`` is a keyless judge the operator listed to run on the machine's own cloud identity:
        then no placeholder key is sent (bedrock would take it for a bearer token) and litellm signs as the
        machine does (boto3's chain, Google's default credentials, Entra ID)."""
        return (spec.api_key_env is None and spec.api_base is None and provider not in KEY_ONLY_PROVIDERS
                and (spec.model in self.cloud or (provider is not None and provider in self.cloud)))

    def check_keyless(self, judge: str, spec: LlmJudgeSpec, provider: str | None) -> None:
        """Raise EgressRefused for a judge with no key and no endpoint whose provider may use the worker's own
        cloud identity, unless the operator listed its model or provider (see the module's docstring)."""
        if spec.api_key_env is not None or spec.api_base is not None or provider in KEY_ONLY_PROVIDERS:
            return
        if self.cloud_identity(spec, provider):
            return
        name = provider or "a provider litellm does not know"
        entry = json.dumps([provider or spec.model])
        raise EgressRefused(
            f"judge {judge!r} refused by the worker's key policy: model {spec.model!r} ({name}) has no api_key_env "
            "and no api_base, so it would authenticate with the worker's own cloud identity and bill its account; "
            f"ask the fleet's operator to list it in JUDGEQ_CLOUD_MODELS on the workers and where you submit "
            f"(JUDGEQ_CLOUD_MODELS='{entry}', or the model itself: '{json.dumps([spec.model])}')")

    def check(self, judge: str, spec: LlmJudgeSpec, provider: str | None) -> None:
        """Return if ``spec``'s calls may be made; raise EgressRefused otherwise.

        ``provider`` is litellm's provider for the model and api_base (None when
        litellm does not know it).
        """
        def refuse(reason: str) -> NoReturn:
            raise EgressRefused(f"judge {judge!r} refused by the worker's key policy: {reason}")

        env = spec.api_key_env
        if env is not None and env.upper().startswith(OWN_PREFIX):  # not even for a trusted route
            refuse(f"api_key_env = {env} is one of judgeq's own settings and is never sent anywhere; "
                   "name the provider's key variable instead (e.g. OPENAI_API_KEY)")
        if Route.of(spec) in self.trusted:
            return
        unsafe = sorted(set(spec.params) - SAFE_PARAMS)
        if unsafe:
            refuse(f"params {', '.join(unsafe)} are not accepted from a submitted judge (allowed: "
                   f"{', '.join(sorted(SAFE_PARAMS))}); remove them from its table in judgeq.toml")
        endpoint = None
        if spec.api_base is not None:
            try:
                endpoint = Endpoint.parse(spec.api_base)
            except ValueError as exc:
                refuse(f"api_base {exc}; give a plain base URL like https://llm.internal:8000/v1")
        if env is None:
            if endpoint is None:
                self.check_keyless(judge, spec, provider)
            elif provider not in KEY_ONLY_PROVIDERS:
                refuse(f"model {spec.model!r} ({provider or 'unknown provider'}) may send credentials found on "
                       f"the worker, so it cannot be pointed at {endpoint}; use an openai/ or hosted_vllm/ "
                       "model for a self-hosted endpoint")
            return
        target = endpoint or _default_endpoint(provider)
        if target is None:
            refuse(f"the worker cannot tell where model {spec.model!r} sends {env} (no api_base, and "
                   f"{provider or 'its provider'} is not a provider with a known endpoint); set api_base")
        allowed = self.keys.get(env, ())
        if not allowed:
            refuse(f"{env} is not in this worker's key allow-list, so it is sent nowhere; use a provider key "
                   f"({', '.join(sorted({p.key_env for p in PROVIDERS}))}) with that provider, or ask the "
                   f"fleet's operator to allow {env} in JUDGEQ_KEY_ENDPOINTS on the workers")
        if not any(a.covers(target) for a in allowed):
            refuse(f"{env} may not be sent to {target}; use its provider's endpoint (leave api_base unset), or "
                   f"ask the fleet's operator to add {target} for {env} to JUDGEQ_KEY_ENDPOINTS on the workers")
        if endpoint is not None and provider not in KEY_ONLY_PROVIDERS and not _listed(self.keys, env, endpoint):
            refuse(f"model {spec.model!r} ({provider or 'unknown provider'}) may send credentials found on the "
                   f"worker along with {env}; only an endpoint the operator listed for {env} may receive it")


def _default_endpoint(provider: str | None) -> Endpoint | None:
    """Where a judge without api_base goes: its provider's own base URL, if judgeq knows it."""
    for known in PROVIDERS:
        if known.name == provider:
            return Endpoint.parse(known.base_url)
    return None


def _listed(keys: Mapping[str, tuple[Endpoint, ...]], env: str, endpoint: Endpoint) -> bool:
    """Whether ``endpoint`` is covered by an entry other than the built-in provider URLs."""
    builtin = {Endpoint.parse(p.base_url) for p in PROVIDERS}
    return any(a.covers(endpoint) for a in keys.get(env, ()) if a not in builtin)

