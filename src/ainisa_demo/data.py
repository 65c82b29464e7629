"""What the demo businesses know: their plans, widgets and customers.

This is the host application's own data. In a real shop the users and orders
come from its database; the demo keeps them here so that every run shows the
same people and the tests can name them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BAKERY",
    "BUSINESSES",
    "USERS",
    "DemoBusiness",
    "DemoOrder",
    "DemoUser",
    "business_for_widget",
]


@dataclass(frozen=True, slots=True)
class DemoBusiness:
    """A business with a website and one chat widget."""

    id: str
    name: str
    #: "pro" includes visitor identity; "free" does not (the plan gate).
    plan: str
    widget_id: str
    #: where its website lives in the demo
    path: str
    tagline: str
    #: what its pages sign with: the guide's "hash", or a signed, expiring "token"
    proofs: str = "hash"


@dataclass(frozen=True, slots=True)
class DemoOrder:
    number: str
    item: str
    state: str


@dataclass(frozen=True, slots=True)
class DemoUser:
    """A customer who can log in to the demo websites (no password: it is a demo)."""

    id: str
    firstname: str
    lastname: str
    email: str
    orders: tuple[DemoOrder, ...]

    @property
    def name(self) -> str:
        return f"{self.firstname} {self.lastname}"


SHOP = DemoBusiness(
    id="shop",
    name="Demo Shop",
    plan="pro",
    widget_id="wid_demo",
    path="/",
    tagline="Coffee gear, delivered. On the Pro plan: the chat knows who you are.",
)
CAFE = DemoBusiness(
    id="cafe",
    name="Corner Cafe",
    plan="free",
    widget_id="wid_free",
    path="/free",
    tagline="Beans by the bag. On the Free plan: every visitor chats as a guest.",
)

BAKERY = DemoBusiness(
    id="bakery",
    name="Token Bakery",
    plan="pro",
    widget_id="wid_token",
    path="/token",
    tagline="Bread to order. Signs each visitor with a token that names this widget "
    "and expires within the hour.",
    proofs="token",
)

#: By business id, in the order the site's navigation lists them.
BUSINESSES: dict[str, DemoBusiness] = {b.id: b for b in (SHOP, CAFE, BAKERY)}

#: By user id. Ids are strings, as the page sends them and the hash covers them.
USERS: dict[str, DemoUser] = {
    u.id: u
    for u in (
        DemoUser(
            id="1",
            firstname="Ada",
            lastname="Lovelace",
            email="ada@example.com",
            orders=(
                DemoOrder("1001", "Espresso machine", "shipped"),
                DemoOrder("1002", "Coffee beans, 1 kg", "being packed"),
            ),
        ),
        DemoUser(
            id="2",
            firstname="Grace",
            lastname="Hopper",
            email="grace@example.com",
            orders=(DemoOrder("1003", "Milk frother", "delivered"),),
        ),
        DemoUser(
            id="3",
            firstname="Alan",
            lastname="Turing",
            email="alan@example.com",
            orders=(),
        ),
    )
}


def business_for_widget(widget_id: str) -> DemoBusiness | None:
    """The demo business that owns a widget, if any."""
    for business in BUSINESSES.values():
        if business.widget_id == widget_id:
            return business
    return None
