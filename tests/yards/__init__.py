"""Job types used by the tests."""
