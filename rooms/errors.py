"""Errors the domain raises; the web and signaling edges turn them into responses once."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""


class InvalidInput(DomainError):
    """A value a user typed is not acceptable; `field` names the form field.

    `template` is the English text with %(name)s placeholders filled from `params`: the web
    edge translates the template, then fills it (`message` is the English text)."""

    def __init__(self, field: str, template: str, **params: object) -> None:
        self.field = field
        self.template = template
        self.params = params
        self.message = template % params if params else template
        super().__init__(f"{field}: {self.message}")


class NotFound(DomainError):
    """The thing does not exist, or belongs to someone else (the two look the same)."""


class WrongCredentials(DomainError):
    """Email and password do not match an account with a password."""

    def __init__(self) -> None:
        super().__init__("The email or password is incorrect.")


class SetupLinkError(DomainError):
    """A password-setup link is unknown, already used, or expired."""
