"""A deterministic demo dataset: the Segment messages of a multi-channel retailer's customers.

`generate` imagines customers of five personas and emits what their browser, phone app, email
provider, call centre and shop tills would send inside a `/v1/batch` body; `batches` wraps them.
"""

from __future__ import annotations

import copy
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from journey.demo_catalog import (
    ACCOUNT_SIZES,
    ACCOUNTS,
    AGENTS,
    CAMPAIGNS,
    CITIES,
    FIRST,
    LAST,
    NEWSLETTERS,
    OUTCOMES,
    PERSONAS,
    PRODUCTS,
    SEARCH,
    SOCIAL,
    STORES,
    Persona,
)
from journey.errors import ConfigError

Message = dict[str, Any]

DEMO_START = datetime(2025, 1, 6, tzinfo=UTC)
SHOP = "https://shop.example.com"
# Lapsing customers go quiet this long before the newest event: more than SPEC 4.2's 90 days.
LAPSE_GAP = timedelta(days=120)
DAY = 86_400.0


@dataclass(slots=True)
class Customer:
    """One imagined customer and what the generator has made them do so far."""

    persona: Persona
    anonymous_id: str
    device_id: str
    user_id: str
    email: str
    phone: str
    name: str
    city: str
    plan: str
    card: str
    registers: bool
    identified: bool = False
    subscribed_at: datetime | None = None
    orders: int = 0
    account: tuple[str, str, str, int] | None = None  # a B2B buyer's account (ACCOUNTS)
    shares_email: bool = False  # one of a couple with one mailbox: signs up on the first visit


def iso(at: datetime) -> str:
    """ISO-8601 UTC with milliseconds and `Z`, as Segment SDKs write timestamps."""
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def batches(messages: Sequence[Message], size: int = 100) -> Iterator[Message]:
    """Yield `/v1/batch` request bodies of at most `size` messages each, in order."""
    if not 1 <= size <= 2500:
        raise ConfigError("batch size must be between 1 and 2500 (SPEC 1.1)", size=size)
    for first in range(0, len(messages), size):
        yield {"batch": list(messages[first : first + size])}


def generate(
    customers: int = 400, seed: int = 7, start: datetime | None = None, days: int = 150
) -> list[Message]:
    """Segment messages of `customers` demo customers over `days` from `start`, by time."""
    if customers < 1 or days < 1:
        raise ConfigError("demo needs at least one customer and one day", customers=customers,
                          days=days)
    begin = start or DEMO_START
    if begin.tzinfo is None:
        raise ConfigError("demo start must carry a time zone (UTC)", start=str(begin))
    writer = _Writer(random.Random(seed), begin, begin + timedelta(days=days))
    people = [writer.customer(index) for index in range(customers)]
    _share_devices(writer.rng, people)
    # Their own generator: the B2B and shared-email additions leave every other draw unchanged.
    _b2b(random.Random(seed * 7919 + 1), people)
    writer.b2b = random.Random(seed * 7919 + 2)
    for person in people:
        writer.life(person)
    # A visit that starts just before the end may run past it: the window is [start, end).
    last = iso(writer.end - timedelta(milliseconds=1))
    kept = (m for m in writer.out if m["timestamp"] <= last)
    return sorted(kept, key=lambda m: (m["timestamp"], m["messageId"]))


def from_backend(message: Message) -> bool:
    """Web orders are reported by the shop's order backend, not the browser (SPEC 6.1's example)."""
    return (message.get("event") == "Order Completed"
            and message.get("context", {}).get("channel") == "web")


def as_backend(message: Message) -> Message:
    """The message as the order backend sends it: without a channel, which its write key's
    default (`KEY:web`) supplies."""
    context = {k: v for k, v in message.get("context", {}).items() if k != "channel"}
    return {**message, "context": context}


def _share_devices(rng: random.Random, people: list[Customer]) -> None:
    """A few households share one laptop: two customers, one anonymousId (SPEC 2.2 refusal)."""
    web = [p for p in people if p.registers]
    for _ in range(max(1, len(people) // 50) if len(web) >= 4 else 0):
        owner, guest = rng.sample(web, 2)
        guest.anonymous_id = owner.anonymous_id


def _b2b(rng: random.Random, people: list[Customer]) -> None:
    """One to three registering customers per account buy for it (SPEC 5.1 accounts); a few
    couples share an email address, so the second sign-up's link is refused (SPEC 2.2) and shows up
    as an identity conflict."""
    web = [p for p in people if p.registers]
    seats = [account for account, size in zip(ACCOUNTS, ACCOUNT_SIZES, strict=True)
             for _ in range(size)]
    for account, person in zip(seats, rng.sample(web, min(len(web), len(seats))), strict=False):
        person.account = account
    for _ in range(3 if len(web) >= 6 else 0):  # not every one signs up: a few couples
        first, second = rng.sample(web, 2)
        family = f"the.{first.name.split(' ')[1].lower()}.family{people.index(first)}@example.com"
        first.email = second.email = family
        first.shares_email = second.shares_email = True


class _Writer:
    """Emits the messages of one customer's life into `out`; all randomness comes from `rng`."""

    def __init__(self, rng: random.Random, start: datetime, end: datetime) -> None:
        self.rng, self.start, self.end = rng, start, end
        self.out: list[Message] = []
        self.b2b = random.Random(0)  # message ids of group calls (set by generate)

    def uid(self) -> str:
        """A random UUID drawn from the seeded generator (uuid4() would break determinism)."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def customer(self, index: int) -> Customer:
        """Draw a customer: persona, identities and traits."""
        rng = self.rng
        persona = rng.choices(PERSONAS, weights=[p.weight for p in PERSONAS])[0]
        first, last = rng.choice(FIRST), rng.choice(LAST)
        return Customer(
            persona=persona, anonymous_id=self.uid(), device_id=self.uid(),
            user_id=f"u{index + 1:05d}", email=f"{first}.{last}{index + 1}@example.com".lower(),
            phone=f"+44 7700 {900000 + index:06d}", name=f"{first} {last}", city=rng.choice(CITIES),
            plan=rng.choices(("free", "plus", "premium"), weights=(6, 3, 1))[0],
            card=f"LC{100000 + index * 7 % 900000:06d}",
            registers=rng.random() < persona.registers)

    def life(self, c: Customer) -> None:
        """Every touch of one customer, from the first to the last episode."""
        rng, p = self.rng, self.persona_end(c)
        span = (p - self.start).total_seconds()
        at = self.start + timedelta(seconds=rng.uniform(0, span * 0.6))
        if c.persona.name == "Store-first":
            at = self.store(c, at, buy=0.75)
        elif rng.random() < c.persona.phone_first:
            at = self.call(c, at)
        if c.shares_email and not c.identified:
            self.identify(c, at + timedelta(minutes=1), self.b2b)
        episodes = rng.randint(*c.persona.visits)
        gap = max(span - (at - self.start).total_seconds(), DAY) / (episodes + 1)
        for _ in range(episodes):
            at += timedelta(seconds=rng.expovariate(1 / gap) + 3600)
            if at >= p:
                break
            roll = rng.random()
            if roll < c.persona.store:
                at = self.store(c, at, buy=0.5)
            elif roll < c.persona.store + c.persona.call:
                at = self.call(c, at)
            elif c.identified and rng.random() < 0.35:
                at = self.newsletter(c, at)
            else:
                at = self.visit(c, at, self.arrival(c.persona))
            if c.persona.lapses and c.orders and rng.random() < 0.6:
                break  # bought once, then went quiet
        if c.subscribed_at is not None:
            self.subscription(c, c.subscribed_at, p)

    def persona_end(self, c: Customer) -> datetime:
        """Lapsing personas stop early enough to be lapsed at the end (when `days` allows)."""
        if c.persona.lapses and self.end - self.start > LAPSE_GAP + timedelta(days=20):
            return self.end - LAPSE_GAP
        return self.end

    def arrival(self, persona: Persona) -> tuple[str, dict[str, str] | None]:
        """Referrer and campaign of a web visit."""
        kind = self.rng.choices(range(4), weights=persona.arrivals)[0]
        if kind == 0:
            source, medium, name = self.rng.choice(CAMPAIGNS)
            return "", {"source": source, "medium": medium, "name": name}
        return (self.rng.choice(SEARCH) if kind == 1 else self.rng.choice(SOCIAL)
                if kind == 2 else ""), None

    # -- message builders -------------------------------------------------------------------

    def emit(self, c: Customer, kind: str, at: datetime, channel: str, **body: Any) -> None:
        """Append one message with the identities a sender on `channel` would know."""
        # Deep copy: messages must not share page or context dicts a consumer might mutate.
        context: dict[str, Any] = copy.deepcopy(body.pop("context", {}))
        context["channel"] = channel
        message_id = body.pop("message_id", None) or self.uid()
        msg: Message = {"type": kind, "messageId": message_id, "timestamp": iso(at),
                        **copy.deepcopy(body)}
        if channel in ("web", "app"):
            msg["anonymousId"] = c.anonymous_id if channel == "web" else c.device_id
            if c.identified:
                msg["userId"] = c.user_id
                context.setdefault("traits", {"email": c.email})
            context["library"] = ({"name": "analytics.js", "version": "5.2.1"} if channel == "web"
                                  else {"name": "analytics-ios", "version": "4.1.8"})
        msg["context"] = context
        self.out.append(msg)

    def page_context(self, path: str, title: str, referrer: str, query: str) -> dict[str, Any]:
        """`context.page` as analytics.js fills it."""
        url = f"{SHOP}{path}" + (f"?{query}" if query else "")
        return {"url": url, "path": path, "title": title, "referrer": referrer,
                "search": f"?{query}" if query else ""}

    def page(self, c: Customer, at: datetime, page: dict[str, Any],
             campaign: dict[str, str] | None = None) -> None:
        """A page view; landing pages of a campaign carry its utm_* in the URL."""
        context: dict[str, Any] = {"page": page, "userAgent": "Mozilla/5.0 (demo)"}
        if campaign is not None and self.rng.random() < 0.5:
            context["campaign"] = campaign  # analytics.js copies utm_* here; not every SDK does
        self.emit(c, "page", at, "web", name=page["title"], properties=dict(page),
                  context=context)

    def track(self, c: Customer, at: datetime, event: str, channel: str,
              properties: dict[str, Any], page: dict[str, Any] | None = None,
              **extra: Any) -> None:
        """A track call; web calls carry the page they happened on."""
        context: dict[str, Any] = extra.pop("context", {})
        if page is not None:
            context["page"] = page
        self.emit(c, "track", at, channel, event=event, properties=properties, context=context,
                  **extra)

    def identify(self, c: Customer, at: datetime, ids: random.Random | None = None) -> None:
        """The sign-up identify call that links the browser to the user and its traits (its
        messageId drawn from `ids` when given, leaving the main generator's draws alone)."""
        c.identified = True
        first, last = c.name.split(" ")
        traits = {"email": c.email, "name": c.name, "first_name": first, "last_name": last,
                  "persona": c.persona.name, "plan": c.plan, "city": c.city, "phone": c.phone}
        message_id = str(uuid.UUID(int=ids.getrandbits(128), version=4)) if ids else None
        self.emit(c, "identify", at, "web", traits=traits, context={"traits": {"email": c.email}},
                  message_id=message_id)
        if c.account is not None:
            account, name, industry, size = c.account
            self.emit(c, "group", at + timedelta(seconds=2), "web", groupId=account,
                      traits={"name": name, "industry": industry, "employees": size,
                              "plan": "team"},
                      message_id=str(uuid.UUID(int=self.b2b.getrandbits(128), version=4)))

    # -- episodes: each takes the time it starts and returns the time it ends -----------------

    def visit(self, c: Customer, at: datetime, arrival: tuple[str, dict[str, str] | None],
              query: str = "") -> datetime:
        """A web visit: landing, browsing, maybe cart, checkout, sign-up and order."""
        rng = self.rng
        referrer, campaign = arrival
        if campaign is not None:
            query = (f"utm_source={campaign['source']}&utm_medium={campaign['medium']}"
                     f"&utm_campaign={campaign['name']}")
        product = rng.choice(PRODUCTS)
        landing = rng.choice((("/", "Home"), (f"/c/{product[2]}", product[2].title()),
                              (f"/p/{product[0]}", product[1])))
        page = self.page_context(landing[0], landing[1], referrer, query)
        self.page(c, at, page, campaign)
        if rng.random() < (0.15 if c.orders else 0.4):
            return self.step(at)  # a bounce: most first visits see one page and leave
        if rng.random() < 0.3:
            at = self.step(at)
            self.track(c, at, "Products Searched", "web", {"query": product[2]}, page)
        if landing[0] == "/" or rng.random() < 0.5:
            at = self.step(at)
            self.track(c, at, "Product List Viewed", "web",
                       {"list_id": product[2], "category": product[2]}, page)
        if rng.random() < 0.08:
            at, page = self.step(at), self.page_context("/membership", "Membership", page["url"],
                                                        "")
            self.page(c, at, page)
            self.track(c, at, "Pricing Viewed", "web", {"plans": ["free", "plus", "premium"]},
                       page)
        cart: list[tuple[str, str, str, float]] = []
        for _ in range(rng.randint(*c.persona.views)):
            product = rng.choice(PRODUCTS)
            at, page = self.step(at), self.page_context(f"/p/{product[0]}", product[1],
                                                        page["url"], "")
            self.page(c, at, page)
            self.track(c, at + timedelta(seconds=1), "Product Viewed", "web", _item(product),
                       page)
            at = self.aside(c, at, product, page)
            if rng.random() < c.persona.add / 2 or (not cart and rng.random() < c.persona.add):
                at = self.step(at)
                cart.append(product)
                added = {**_item(product), "cart_id": c.anonymous_id[:8]}
                self.track(c, at, "Product Added", "web", added, page)
        if not cart:
            return self.step(at)
        at = self.step(at)
        self.track(c, at, "Cart Viewed", "web", {"products": [_item(p) for p in cart]}, page)
        if not c.registers or rng.random() > 0.75:
            return self.step(at)
        if not c.identified:
            at = self.step(at)
            self.identify(c, at)
            self.track(c, at + timedelta(seconds=2), "Signed Up", "web", {"method": "email"}, page)
        at = self.step(at)
        self.track(c, at, "Checkout Started", "web", _order(cart, None), page)
        if rng.random() < c.persona.buy:
            at = self.step(at)
            self.order(c, at, cart, "web", page)
        return self.step(at)

    def aside(self, c: Customer, at: datetime, product: tuple[str, str, str, float],
              page: dict[str, Any]) -> datetime:
        """Rarer things done on a product page: sharing it, booking an in-store fitting."""
        roll = self.rng.random()
        if roll < 0.01:
            at = self.step(at)
            self.track(c, at, "Product Shared", "web",
                       {**_item(product), "share_via": self.rng.choice(("facebook", "whatsapp"))},
                       page)
        elif roll < 0.025:
            at = self.step(at)
            store_id = self.rng.choice(STORES)[0]
            self.track(c, at, "Demo Requested", "web",
                       {"product_id": product[0], "store_id": store_id, "kind": "fitting"}, page)
        return at

    def order(self, c: Customer, at: datetime, cart: list[tuple[str, str, str, float]],
              channel: str, page: dict[str, Any] | None, **extra: Any) -> None:
        """Order Completed, then what a real order brings: surveys, reviews, subscriptions."""
        rng = self.rng
        c.orders += 1
        self.track(c, at, "Order Completed", channel, _order(cart, f"o-{self.uid()[:8]}"), page,
                   **extra)
        if channel == "web" and rng.random() < 0.3:
            score = rng.randint(*((5, 7) if c.persona.nps[0] >= 5 else (1, 5)))
            self.track(c, at + timedelta(minutes=1), "Survey Responded", "web",
                       {"survey": "ces", "score": score}, page)
        later = at + timedelta(days=rng.uniform(5, 12))
        if c.registers and later < self.end and rng.random() < 0.5:
            self.survey(c, later, "nps", rng.randint(*c.persona.nps))
        later += timedelta(days=rng.uniform(1, 6))
        if c.identified and later < self.end and rng.random() < c.persona.advocate:
            review = {"product_id": cart[0][0], "rating": rng.randint(3, 5),
                      "review_id": self.uid()}
            self.track(c, later, "Review Submitted", "web", review)
            if rng.random() < 0.5:
                self.track(c, later + timedelta(minutes=3), "Referral Sent", "web",
                           {"referral_code": f"REF-{c.user_id}", "medium": "link"})
        subscribes = c.identified and c.plan != "free" and c.subscribed_at is None
        if subscribes and rng.random() < c.persona.subscribes:
            c.subscribed_at = at + timedelta(minutes=5)
            self.track(c, c.subscribed_at, "Subscription Started", channel,
                       {"plan": c.plan, "period": "monthly"}, page, **extra)

    def survey(self, c: Customer, at: datetime, survey: str, score: int) -> None:
        """A survey answered from an email link: the email provider knows only the address."""
        self.track(c, at, "Survey Responded", "email",
                   {"survey": survey, "score": score, "email": c.email})

    def newsletter(self, c: Customer, at: datetime) -> datetime:
        """Email Delivered, maybe Opened and Clicked, and the visit the click starts."""
        rng = self.rng
        name = rng.choice(NEWSLETTERS)
        props = {"email": c.email, "campaign_name": name, "email_id": f"em-{name}"}
        self.track(c, at, "Email Delivered", "email", props)
        if rng.random() < 0.55:
            at += timedelta(hours=rng.uniform(0.5, 20))
            self.track(c, at, "Email Opened", "email", props)
            if rng.random() < 0.45:
                at += timedelta(seconds=rng.uniform(5, 90))
                self.track(c, at, "Email Clicked", "email", {**props, "link": f"{SHOP}/"})
                campaign = {"source": "newsletter", "medium": "email", "name": name}
                return self.visit(c, at + timedelta(seconds=4), ("", campaign))
        return at

    def call(self, c: Customer, at: datetime) -> datetime:
        """A call to the call centre; the agent records the phone number and the email."""
        rng = self.rng
        outcome = rng.choice(OUTCOMES)
        duration = rng.randint(60, 1500)
        props = {"phone": c.phone, "email": c.email, "agent": rng.choice(AGENTS),
                 "duration_s": duration, "outcome": outcome,
                 "reason": rng.choice(("delivery", "returns", "product_question", "billing"))}
        self.track(c, at, "Call Completed", "call", props,
                   context={"traits": {"phone": c.phone, "email": c.email}})
        at += timedelta(seconds=duration)
        if outcome == "order_placed":
            if rng.random() < 0.3:  # a club's bulk order, quoted by the agent
                self.track(c, at, "Quote Accepted", "call",
                           {"quote_id": f"q-{self.uid()[:8]}", "kind": "club_order"},
                           context={"traits": {"phone": c.phone, "email": c.email}})
            self.order(c, at, [rng.choice(PRODUCTS)], "call", None,
                       context={"traits": {"phone": c.phone, "email": c.email}})
        if rng.random() < 0.4:
            score = rng.randint(*((3, 5) if c.persona.nps[0] >= 5 else (1, 3)))
            self.survey(c, at + timedelta(hours=2), "csat", score)
        return at

    def store(self, c: Customer, at: datetime, buy: float) -> datetime:
        """A shop visit scanned with the loyalty card, maybe an order at the till."""
        rng = self.rng
        store_id, store_name = rng.choice(STORES)
        context = {"externalIds": [{"id": c.card, "type": "loyalty_card", "collection": "users",
                                    "encoding": "none"}], "traits": {"email": c.email}}
        self.track(c, at, "Store Visited", "store", {"store_id": store_id, "store": store_name},
                   context=dict(context))
        at += timedelta(minutes=rng.uniform(5, 40))
        if rng.random() < buy:
            cart = rng.sample(PRODUCTS, rng.randint(1, 3))
            self.order(c, at, cart, "store", None, context=dict(context))
        return at

    def subscription(self, c: Customer, at: datetime, until: datetime) -> None:
        """Monthly renewals and app usage until the customer's last day."""
        rng, month = self.rng, at
        while (month := month + timedelta(days=30)) < until:
            if c.persona.lapses and rng.random() < 0.5:
                self.track(c, month, "Subscription Cancelled", "email",
                           {"plan": c.plan, "email": c.email})
                return
            self.track(c, month, "Subscription Renewed", "email",
                       {"plan": c.plan, "email": c.email, "period": "monthly"})
            for _ in range(rng.randint(0, 3)):
                used = month + timedelta(days=rng.uniform(0, 29))
                if used < until:
                    self.track(c, used, "Product Used", "app",
                               {"feature": rng.choice(("route_planner", "gear_list", "tracker"))},
                               context={"app": {"name": "Journey Outdoors", "version": "3.4.0"},
                                        "device": {"type": "ios"}})

    def step(self, at: datetime) -> datetime:
        """Think time between two clicks of a visit."""
        return at + timedelta(seconds=self.rng.uniform(8, 150))


def _item(product: tuple[str, str, str, float]) -> dict[str, Any]:
    """Segment's ecommerce spec product object."""
    pid, name, category, price = product
    return {"product_id": pid, "sku": pid.upper(), "name": name, "category": category,
            "price": price, "quantity": 1, "currency": "GBP"}


def _order(cart: list[tuple[str, str, str, float]], order_id: str | None) -> dict[str, Any]:
    """Checkout or order properties; only a completed order has an id and revenue."""
    total = round(sum(p[3] for p in cart), 2)
    body: dict[str, Any] = {"products": [_item(p) for p in cart], "currency": "GBP",
                            "value": total}
    if order_id is not None:
        body.update(order_id=order_id, total=total, revenue=round(total / 1.2, 2),
                    tax=round(total - total / 1.2, 2))
    return body
