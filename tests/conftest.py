# All shared fixtures (embedded broker, Salesforce emulator, worker processes) live in one module.
pytest_plugins = ["tests.fixtures"]
