"""The composition root: builds the worker, the API, the gateway and the CLI commands from Settings."""
