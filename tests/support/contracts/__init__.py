"""Contract suites: one abstract test class per port, run on the real adapter and on its twin."""
