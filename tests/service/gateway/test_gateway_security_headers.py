"""Every HTML page the gateway serves carries the Content-Security-Policy, whatever the
view and whether its services answered or not."""
from __future__ import annotations

import re

from gateway.app import CONTENT_SECURITY_POLICY
from tests.service.gateway.conftest import PASSWORD


def forbids_inline_script(policy: str | None) -> bool:
    """Scripts (``script-src``, else ``default-src``) only from the site, never inline:
    public link pages keep their own stricter policy, the rest the gateway's."""
    if not policy:
        return False
    rules = {}
    for part in policy.split(";"):
        name, _, value = part.strip().partition(" ")
        rules[name] = value
    scripts = rules.get("script-src", rules.get("default-src", ""))
    return scripts.strip() == "'self'"


def test_the_gateways_policy_forbids_inline_script():
    assert forbids_inline_script(CONTENT_SECURITY_POLICY)
    assert not forbids_inline_script("script-src 'self' 'unsafe-inline'")


def test_every_html_page_served_carries_the_content_security_policy(make_app, add_user):
    app = make_app(RPC_TIMEOUT=0.2, PAGE_DEADLINE=0.2, REPORT_DEADLINE=0.2)
    add_user("root", roles=["admin", "head", "manager", "accountant"])
    client = app.test_client()
    assert client.post("/login", data={"username": "root", "password": PASSWORD}).status_code \
        == 302
    seen = 0
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.rule.startswith(("/api/", "/static")) \
                or "export" in rule.rule:  # files, with their own long deadline
            continue
        path = re.sub(r"<[^>]+>", "1", rule.rule)
        response = client.get(path, headers={"Accept": "text/html"})
        if response.mimetype == "text/html":
            seen += 1
            assert forbids_inline_script(response.headers.get("Content-Security-Policy")), \
                (path, response.status_code)
    assert seen > 20
