"""Identity resolution: the identity graph, one ``customer_id`` per person, the golden record.

>>> from loupe.identity import resolve_identities, customer_360  # doctest: +SKIP
>>> report = resolve_identities(wh)  # doctest: +SKIP
>>> customer_360(wh, "Someone@Example.com")["customer"]  # doctest: +SKIP
"""

from loupe.identity.attach import order_customers
from loupe.identity.customer360 import customer_360
from loupe.identity.explain import explain
from loupe.identity.search import find_customers
from loupe.identity.stage import IdentityReport, resolve_identities

__all__ = [
    "IdentityReport",
    "customer_360",
    "explain",
    "find_customers",
    "order_customers",
    "resolve_identities",
]
