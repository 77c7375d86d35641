"""The engine (no Qt): restore images and videos, train, benchmark."""
