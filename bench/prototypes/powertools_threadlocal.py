"""Prototype: powertools' event handler keeps the current event on the BaseRouter CLASS (process-global); make it
per thread so concurrent handler instances in one process (the local API adapter) cannot read each other's event."""
import threading

from aws_lambda_powertools.event_handler import api_gateway

_state = threading.local()


def _slot(name):
    return property(lambda self: getattr(_state, name, None), lambda self, value: setattr(_state, name, value))


class _ThreadLocalRouterMeta(type(api_gateway.BaseRouter)):
    current_event = _slot("current_event")  # class-level `BaseRouter.current_event = ...` lands here
    lambda_context = _slot("lambda_context")


def install() -> None:
    router = api_gateway.BaseRouter
    for name in ("current_event", "lambda_context"):
        if name in router.__dict__:
            delattr(router, name)
        setattr(router, name, _slot(name))  # instance-level `app.current_event` reads here
    router.__class__ = _ThreadLocalRouterMeta
