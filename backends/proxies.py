"""Whether an HTTP proxy from the environment applies to an endpoint, as botocore reads it.

The direct client (`backends.personalize_direct`) connects to the endpoint itself and
speaks no proxy protocol. Every AWS SDK honours `HTTPS_PROXY`, `HTTP_PROXY` and
`NO_PROXY`, so where one applies the service takes the aioboto3 client instead (see
`backends.personalize_client`), which does: botocore's own reading of the environment
decides, so both agree on which endpoints a proxy covers.
"""

from botocore.utils import get_environ_proxies, should_bypass_proxies


def proxy_for(endpoint: str) -> str | None:
    """The proxy the environment names for `endpoint`, or None when none applies."""
    if should_bypass_proxies(endpoint):
        return None
    proxies = get_environ_proxies(endpoint)
    scheme = endpoint.split("://", 1)[0].lower()
    found = proxies.get(scheme)
    return str(found) if found else None
