pytest_plugins = ["fleetctl.testing"]
