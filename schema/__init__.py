"""Strawberry types, inputs, enums and schema assembly; no I/O, no boto."""
