# Import the real packages before pytest's importlib mode derives module names such as
# `chassis.tests.conftest` from test paths, which would otherwise shadow them with empty modules.
import chassis
import contracts

pytest_plugins = ["fleetctl.testing"]

__all__ = ["chassis", "contracts"]
