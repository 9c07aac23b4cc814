"""One typed method per panel operation the bridge uses, all through `request()`.

A mixin of `PanelClient`, kept apart so the transport rules (budget, auth,
classification) and the catalogue of operations each fit on a screen. Bodies are
exactly what the panel contract names; writes take the caller's idempotency key.
"""

from collections.abc import Mapping
from typing import Any, Protocol

from bridge.panel.errors import PanelRejectedError
from bridge.panel.schemas import PanelPage, PanelResponse, parse_page


class _Request(Protocol):
    def __call__(
        self,
        operation: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> PanelResponse: ...


class PanelOperations:
    """Typed panel operations; `request` is provided by `PanelClient`."""

    # Declared, not defined: the one transport is PanelClient.request.
    request: _Request

    # users

    def create_user(
        self,
        username: str,
        email: str,
        password: str,
        package: str,
        *,
        idempotency_key: str,
    ) -> PanelResponse:
        body = {
            "username": username,
            "email": email,
            "password": password,
            "package": package,
        }
        return self.request("create_user", body=body, idempotency_key=idempotency_key)

    def get_user(self, username: str) -> PanelResponse:
        return self.request("get_user", params={"username": username})

    def list_users(
        self, *, page: int | None = None, per_page: int | None = None
    ) -> PanelPage:
        return self._list("list_users", "users", _paging(page, per_page))

    def delete_user(self, username: str, *, idempotency_key: str) -> PanelResponse:
        return self.request(
            "delete_user",
            params={"username": username},
            idempotency_key=idempotency_key,
        )

    def suspend_user(
        self, username: str, reason: str, *, idempotency_key: str
    ) -> PanelResponse:
        return self.request(
            "suspend_user",
            params={"username": username},
            body={"reason": reason},
            idempotency_key=idempotency_key,
        )

    def unsuspend_user(self, username: str, *, idempotency_key: str) -> PanelResponse:
        return self.request(
            "unsuspend_user",
            params={"username": username},
            idempotency_key=idempotency_key,
        )

    def change_package(
        self, username: str, package: str, *, idempotency_key: str
    ) -> PanelResponse:
        return self.request(
            "change_package",
            params={"username": username},
            body={"package": package},
            idempotency_key=idempotency_key,
        )

    def change_password(
        self, username: str, password: str, *, idempotency_key: str
    ) -> PanelResponse:
        return self.request(
            "change_password",
            params={"username": username},
            body={"password": password},
            idempotency_key=idempotency_key,
        )

    # resellers (admin credentials only)

    def create_reseller(
        self,
        username: str,
        email: str,
        password: str,
        package: str,
        *,
        idempotency_key: str,
    ) -> PanelResponse:
        body = {
            "username": username,
            "email": email,
            "password": password,
            "package": package,
        }
        return self.request(
            "create_reseller", body=body, idempotency_key=idempotency_key
        )

    def set_reseller_limits(
        self, username: str, limits: Mapping[str, int], *, idempotency_key: str
    ) -> PanelResponse:
        return self.request(
            "set_reseller_limits",
            params={"username": username},
            body=dict(limits),
            idempotency_key=idempotency_key,
        )

    def delete_reseller(self, username: str, *, idempotency_key: str) -> PanelResponse:
        return self.request(
            "delete_reseller",
            params={"username": username},
            idempotency_key=idempotency_key,
        )

    def list_reseller_users(self, username: str) -> PanelPage:
        return self._list(
            "list_reseller_users", "users", None, params={"username": username}
        )

    # packages

    def list_packages(self) -> PanelPage:
        return self._list("list_packages", "packages", None)

    def get_package(self, name: str) -> PanelResponse:
        return self.request("get_package", params={"name": name})

    # single sign-on and usage (issue 13)

    def mint_sso(
        self,
        username: str,
        *,
        expires_in: int,
        target_path: str | None,
        idempotency_key: str,
    ) -> PanelResponse:
        """Mint a single-use login link; the answer holds it: never log it."""
        body: dict[str, Any] = {"username": username, "expires_in": expires_in}
        if target_path is not None:
            body["target_path"] = target_path
        return self.request("sso_mint", body=body, idempotency_key=idempotency_key)

    def get_user_usage(self, username: str) -> PanelResponse:
        return self.request("get_user_usage", params={"username": username})

    def list_usage(self, *, page: int, per_page: int) -> PanelPage:
        return self._list("list_usage", "usage", _paging(page, per_page))

    # domains and certificates

    def create_domain(
        self, domain: str, username: str, *, idempotency_key: str
    ) -> PanelResponse:
        return self.request(
            "create_domain",
            body={"domain": domain, "username": username},
            idempotency_key=idempotency_key,
        )

    def get_domain(self, domain: str) -> PanelResponse:
        return self.request("get_domain", params={"domain": domain})

    def issue_ssl(self, domain: str, *, idempotency_key: str) -> PanelResponse:
        return self.request(
            "issue_ssl", params={"domain": domain}, idempotency_key=idempotency_key
        )

    def renew_ssl(self, domain: str, *, idempotency_key: str) -> PanelResponse:
        return self.request(
            "renew_ssl", params={"domain": domain}, idempotency_key=idempotency_key
        )

    def get_ssl(self, domain: str) -> PanelResponse:
        return self.request("get_ssl", params={"domain": domain})

    # mail

    def create_mailbox(
        self,
        domain: str,
        local_part: str,
        password: str,
        quota_mb: int,
        *,
        idempotency_key: str,
    ) -> PanelResponse:
        body = {
            "domain": domain,
            "username": local_part,
            "password": password,
            "quota_mb": quota_mb,
        }
        return self.request(
            "create_mailbox", body=body, idempotency_key=idempotency_key
        )

    def list_mailboxes(self, domain: str) -> PanelPage:
        return self._list("list_mailboxes", "accounts", {"domain": domain})

    # account import (read-only, paginated) and webhooks

    def list_domains(
        self, *, page: int | None = None, per_page: int | None = None
    ) -> PanelPage:
        return self._list("list_domains", "domains", _paging(page, per_page))

    def list_certificates(self) -> PanelPage:
        return self._list("list_certificates", "certificates", None)

    def list_all_mailboxes(
        self, *, page: int | None = None, per_page: int | None = None
    ) -> PanelPage:
        return self._list("list_mailboxes", "accounts", _paging(page, per_page))

    def create_webhook(
        self, url: str, events: list[str], *, idempotency_key: str
    ) -> PanelResponse:
        return self.request(
            "create_webhook",
            body={"url": url, "events": events, "enabled": True},
            idempotency_key=idempotency_key,
        )

    def delete_webhook(self, webhook_id: str, *, idempotency_key: str) -> PanelResponse:
        return self.request(
            "delete_webhook",
            params={"id": webhook_id},
            idempotency_key=idempotency_key,
        )

    def _list(
        self,
        operation: str,
        plural: str,
        query: Mapping[str, str] | None,
        *,
        params: Mapping[str, str] | None = None,
    ) -> PanelPage:
        response = self.request(operation, params=params, query=query)
        page = parse_page(response.data, plural)
        if page is None:
            raise PanelRejectedError(
                operation,
                status=response.status,
                message="answer is not a list in any known shape",
            )
        return PanelPage(
            items=page.items,
            total=page.total,
            current_page=page.current_page,
            last_page=page.last_page,
            response=response,
        )


def _paging(page: int | None, per_page: int | None) -> dict[str, str] | None:
    # Pagination is opt-in (wispanel-api.md §6): without these the panel answers
    # with its plain list shape.
    query = {}
    if page is not None:
        query["page"] = str(page)
    if per_page is not None:
        query["per_page"] = str(per_page)
    return query or None
