"""The parts of the services' RPC contracts their callers need as code: the names of list
columns, filters and channels, the size limits, the placeholders of document templates.
Each service imports its part from here too, so one definition serves both sides; the
gateway depends on the services only through these and their RPC methods (never on a
service's own modules: tests/unit/test_gateway_imports.py)."""
