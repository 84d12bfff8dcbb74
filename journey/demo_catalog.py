"""The demo's catalogue: the retailer's personas, products, campaigns, people, shops and B2B
accounts that journey/demo.py draws its customers and their touches from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Persona:
    """How one kind of customer behaves: the knobs the generator turns per persona."""

    name: str
    weight: float
    visits: tuple[int, int]  # episodes (web visits and other touches) over the period
    views: tuple[int, int]  # products viewed per web visit
    add: float  # P(product added | web visit)
    buy: float  # P(order | checkout started)
    registers: float  # P(ever creates an account on the web)
    nps: tuple[int, int]  # range of NPS answers
    advocate: float  # P(review or referral after an order)
    subscribes: float  # P(subscription after the first order)
    phone_first: float  # P(first touch is a call to the call centre)
    call: float  # P(an episode is a call)
    store: float  # P(an episode is a shop visit)
    arrivals: tuple[float, float, float, float]  # weights of campaign, search, social, direct
    lapses: bool = False


PERSONAS: tuple[Persona, ...] = (
    Persona("Bargain Hunter", 0.25, (3, 8), (2, 5), 0.55, 0.55, 0.8, (5, 9), 0.08, 0.15,
            0.03, 0.05, 0.05, (0.6, 0.15, 0.15, 0.1)),
    Persona("Loyal Regular", 0.2, (5, 10), (1, 3), 0.65, 0.9, 1.0, (8, 10), 0.45, 0.6,
            0.05, 0.08, 0.12, (0.15, 0.1, 0.1, 0.65)),
    Persona("Researcher", 0.25, (2, 7), (4, 9), 0.25, 0.35, 0.5, (6, 10), 0.15, 0.1,
            0.05, 0.1, 0.03, (0.15, 0.6, 0.1, 0.15)),
    Persona("Store-first", 0.15, (2, 5), (1, 3), 0.3, 0.7, 0.6, (7, 10), 0.2, 0.15,
            0.0, 0.05, 0.55, (0.2, 0.2, 0.1, 0.5)),
    Persona("Churn risk", 0.15, (2, 5), (1, 4), 0.4, 0.6, 0.9, (0, 6), 0.02, 0.1,
            0.25, 0.3, 0.05, (0.4, 0.2, 0.2, 0.2), lapses=True),
)

PRODUCTS: tuple[tuple[str, str, str, float], ...] = (
    ("p-101", "Trail Runner Shoes", "footwear", 89.0),
    ("p-102", "Waterproof Jacket", "outerwear", 149.0),
    ("p-103", "Merino Base Layer", "apparel", 59.0),
    ("p-104", "Daypack 24L", "bags", 75.0),
    ("p-105", "Insulated Bottle", "accessories", 25.0),
    ("p-106", "Camping Stove", "camping", 65.0),
    ("p-107", "Two-Person Tent", "camping", 249.0),
    ("p-108", "Headlamp 400lm", "accessories", 35.0),
    ("p-109", "Hiking Socks 3-pack", "apparel", 19.0),
    ("p-110", "Trekking Poles", "accessories", 79.0),
)
CAMPAIGNS = (("google", "cpc", "spring_sale"), ("facebook", "paid_social", "new_arrivals"),
             ("instagram", "social", "trail_week"), ("bing", "cpc", "brand"))
SEARCH = ("https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/")
SOCIAL = ("https://www.facebook.com/", "https://t.co/x7Qe2", "https://www.instagram.com/",
          "https://www.pinterest.com/")
NEWSLETTERS = ("weekly_picks", "back_in_stock", "members_offer", "winter_clearance")
FIRST = ("Ada", "Ben", "Chloe", "Dev", "Ema", "Finn", "Grace", "Hugo", "Isla", "Jon", "Kira",
         "Leo", "Maya", "Nils", "Omar", "Priya", "Rosa", "Sam", "Tara", "Yusuf")
LAST = ("Okafor", "Schmidt", "Nguyen", "Garcia", "Kowalski", "Haddad", "Silva", "Moreau",
        "Rossi", "Tanaka", "Byrne", "Larsen", "Patel", "Cohen")
CITIES = ("London", "Manchester", "Leeds", "Bristol", "Glasgow", "Cardiff")
AGENTS = ("agent-anna", "agent-bo", "agent-carl", "agent-dina")
OUTCOMES = ("resolved", "resolved", "order_placed", "escalated", "callback")
STORES = (("st-01", "London Covent Garden"), ("st-02", "Manchester Arndale"),
          ("st-03", "Leeds Trinity"))
# B2B buyers (SPEC 5.1 accounts): clubs, schools and firms that equip a team; the members who sign
# up send a `group` call naming the account.
ACCOUNTS = (("acc-peak-club", "Peak District Walking Club", "club", 120),
            ("acc-harbour-school", "Harbour Outdoor School", "education", 45),
            ("acc-trailworks", "Trailworks Ltd", "guiding", 18),
            ("acc-northfell", "Northfell Mountain Rescue", "rescue", 60),
            ("acc-greenway", "Greenway Scouts", "youth", 200),
            ("acc-summit-tours", "Summit Tours", "travel", 12))
ACCOUNT_SIZES = (3, 2, 1, 3, 1, 2)  # members who sign up, per account
