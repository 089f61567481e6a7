"""Helpers the tests (and some benches) share: real servers, real files, fault injection."""
