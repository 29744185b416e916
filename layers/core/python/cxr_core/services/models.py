"""GET /v1/models and the choice of a model per request: only what this deployment serves, by name."""
from __future__ import annotations

from cxr_core.domain import bad_request


def choose_model(served: dict[str, dict], default: str, *requested: str | None) -> dict:
    """The identity of the model a request names (query, form field or JSON key; they must agree), else the default's."""
    names = {name for name in requested if name}
    if len(names) > 1:
        raise bad_request(f"the request names several models ({', '.join(sorted(names))}); name one")
    name = names.pop() if names else default
    if name not in served:
        raise bad_request(f"unknown model {name!r}; this deployment serves: {', '.join(served)}")
    return served[name]


def models_view(served: dict[str, dict], default: str) -> dict:
    """What each served model is: name, the findings it reports, its weights (kind and SHA-256), input size."""
    return {"default": default, "models": [
        {"name": name, "default": name == default, "findings": list(identity.get("findings", [])),
         "weights": identity.get("weights"), "weights_sha256": identity.get("weights_sha256"),
         "input_size": identity.get("input_size"), "model_id": identity.get("model_id"),
         **({"warning": identity["warning"]} if identity.get("warning") else {})}
        for name, identity in served.items()]}
