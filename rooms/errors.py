"""Errors the domain raises; the web and signaling edges turn them into responses once."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""


class InvalidInput(DomainError):
    """A value a user typed is not acceptable; `field` names the form field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class NotFound(DomainError):
    """The thing does not exist, or belongs to someone else (the two look the same)."""


class WrongCredentials(DomainError):
    """Email and password do not match an account with a password."""

    def __init__(self) -> None:
        super().__init__("The email or password is incorrect.")


class SetupLinkError(DomainError):
    """A password-setup link is unknown, already used, or expired."""
