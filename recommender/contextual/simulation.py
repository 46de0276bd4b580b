"""A simulated storefront for the offer ranker: requests, offers and clicks from hidden truth.

Built on `marketing.simulation.store` (customers' hidden category tastes, price levels,
latent factors, activity, preferred hours; items with category, price level, quality,
latent factors). Nothing here touches Django, so benchmarks and tests run it in-process.

What the ranker sees (the features a storefront and the live profile would give):
- context: device, page, hour, referrer, cart value;
- customer: order and revenue buckets, recency, the top categories of a sample of the
  customer's views (drawn from the hidden taste, so a noisy picture of it; customers with
  few views have few or none), segment ids (price-sensitive, premium, frequent: noisy
  labels of the hidden price level and activity), country, the customer's id;
- offer: id, type, category, price tier (budget / standard / premium), price, discount.

What decides a click (hidden): logistic of
  base + taste weight * log(taste[category] + 0.02) - price-level mismatch + item quality
  + latent customer x item match + context effects (free shipping on the cart page and with
  a mid cart value, discounts for price-sensitive customers and from email, content on
  product pages and from search, bundles on desktop, evening visits)
calibrated so that a random offer is clicked about 2-3% of the time. The latent match is
not observable from any feature, as in reality; the oracle (`click_probabilities`) knows it.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

from marketing.simulation.store import CATEGORIES, COUNTRIES, PRICE_LEVELS, StoreTruth

OFFER_TYPES = ("discount", "bundle", "free_shipping", "content")
DEVICES = ("mobile", "desktop", "tablet")
PAGES = ("home", "product", "category", "cart")
REFERRERS = ("direct", "search", "email", "social")
SEGMENT_PRICE_SENSITIVE = 101
SEGMENT_PREMIUM = 102
SEGMENT_FREQUENT = 103


@dataclass(frozen=True)
class StorefrontConfig:
    offers: int = 30
    seed: int = 7
    base_logit: float = -2.0
    taste_weight: float = 0.9
    latent_weight: float = 0.8
    price_mismatch: float = 0.5

    def __post_init__(self) -> None:
        if not 2 <= self.offers <= 200:
            raise ValueError("offers must be between 2 and 200")


@dataclass(frozen=True)
class Request:
    customer: int  # index into the truth's customer arrays
    context: dict[str, Any]
    device: int
    page: int
    referrer: int
    hour: int
    cart_value: float


class OfferStorefront:
    """Offers with attributes, customers' observable profiles, and the hidden click model."""

    def __init__(self, truth: StoreTruth, config: StorefrontConfig | None = None) -> None:
        self.truth = truth
        self.config = config = config or StorefrontConfig()
        rng = np.random.default_rng([config.seed, 8])
        n = config.offers
        in_stock = np.flatnonzero(truth.item_in_stock)
        self.offer_item = rng.choice(in_stock, size=n, replace=False)
        self.offer_type = rng.integers(0, len(OFFER_TYPES), n)
        self.offer_discount = np.where(
            self.offer_type == 0, rng.choice([10, 15, 20, 30], n), 0
        ).astype(float)
        self.offer_category = truth.item_category[self.offer_item].astype(int)
        self.offer_price = truth.item_price[self.offer_item]
        self.offers: list[dict[str, Any]] = [
            {
                "id": f"offer-{j + 1}",
                "features": {
                    "type": OFFER_TYPES[self.offer_type[j]],
                    "category": CATEGORIES[self.offer_category[j]],
                    "price": float(self.offer_price[j]),
                    "discount": float(self.offer_discount[j]),
                    "tier": PRICE_LEVELS[truth.item_price_level[self.offer_item[j]]],
                },
            }
            for j in range(n)
        ]
        self._customer_weights = truth.activity / truth.activity.sum()
        self._main_device = rng.choice(len(DEVICES), truth.n_customers, p=[0.6, 0.3, 0.1])
        self._profiles: dict[int, dict[str, Any]] = {}
        self._profile_rng = np.random.default_rng([config.seed, 9])
        self._static_logit = self._static_logits()

    def _static_logits(self) -> np.ndarray:
        """(customers, offers) part of the click logit that does not depend on the request."""
        t, cfg = self.truth, self.config
        items = self.offer_item
        mismatch = np.abs(t.price_level[:, None] - t.item_price_level[items][None, :])
        latent = t.customer_latent @ t.item_latent[items].T
        self._taste_term = cfg.taste_weight * np.log(t.taste[:, self.offer_category] + 0.02)
        self._latent_term = cfg.latent_weight * 0.5 * latent / (latent.std() + 1e-9)
        return (
            cfg.base_logit
            + self._taste_term
            - cfg.price_mismatch * mismatch
            + 0.5 * t.item_quality[items][None, :]
            + self._latent_term
        )

    def profile_oracle_choice(self, request: Request) -> int:
        """The best offer for someone who knows the click model but sees the customer only
        through the profile: view shares instead of the hidden taste, no latent match.

        A ceiling for any ranker fed these features, between random and the full oracle.
        """
        c = request.customer
        p = self.click_probabilities(request)
        logit = np.log(p / (1 - p)) - self._taste_term[c] - self._latent_term[c]
        shares = self.customer_features(c)["category_affinity"]
        observed = np.array([shares.get(CATEGORIES[k], 0.0) for k in self.offer_category])
        logit += self.config.taste_weight * np.log(observed + 0.02)
        return int(np.argmax(logit))

    def customer_oracle_choice(self, customer: int) -> int:
        """The best fixed offer for the customer knowing their hidden tastes (taste, price
        level, latent match, quality) but not the request (page, device, cart, referrer):
        the best fixed assignment of one offer to each customer."""
        return int(np.argmax(self._static_logit[customer]))

    def customer_features(self, customer: int) -> dict[str, Any]:
        """The live-profile view of a customer (computed once, then fixed)."""
        profile = self._profiles.get(customer)
        if profile is not None:
            return profile
        t, rng = self.truth, self._profile_rng
        activity = float(t.activity[customer])
        views = rng.poisson(activity * 150)
        counts = rng.multinomial(views, t.taste[customer]) if views else np.zeros(len(CATEGORIES))
        top = [CATEGORIES[c] for c in np.argsort(-counts, kind="stable")[:3] if counts[c] > 0]
        orders = int(rng.poisson(views * 0.05))
        segments = []
        level = int(t.price_level[customer])
        noisy_level = level if rng.random() < 0.8 else int(rng.integers(0, 3))
        if noisy_level == 0:
            segments.append(SEGMENT_PRICE_SENSITIVE)
        elif noisy_level == 2:
            segments.append(SEGMENT_PREMIUM)
        if activity > np.quantile(t.activity, 0.75):
            segments.append(SEGMENT_FREQUENT)
        profile = {
            "orders": orders,
            "revenue": round(orders * float(rng.lognormal(3.5, 0.6)), 2),
            "recency_days": int(rng.exponential(20 / (activity + 0.05))) if views else None,
            "top_categories": top,
            "category_affinity": {
                CATEGORIES[c]: round(float(counts[c]) / views, 3) for c in np.flatnonzero(counts)
            },
            "segments": segments,
            "country": COUNTRIES[t.country[customer]][0],
            "id": f"c{customer}",  # as the live profile gives the customer's id
        }
        self._profiles[customer] = profile
        return profile

    def draw_request(self, rng: np.random.Generator) -> Request:
        t = self.truth
        customer = int(rng.choice(t.n_customers, p=self._customer_weights))
        device = int(self._main_device[customer]) if rng.random() < 0.7 else int(rng.integers(3))
        page = int(rng.choice(4, p=[0.35, 0.3, 0.2, 0.15]))
        referrer = int(rng.choice(4, p=[0.4, 0.3, 0.15, 0.15]))
        hour = int((t.preferred_hour[customer] + round(rng.normal(0, 3))) % 24)
        cart = (
            float(np.round(rng.lognormal(3.8, 0.8), 2)) if page == 3 or rng.random() < 0.2 else 0.0
        )
        context = {
            "device": DEVICES[device],
            "page": PAGES[page],
            "hour": hour,
            "referrer": REFERRERS[referrer],
            "cart_value": cart,
        }
        return Request(customer, context, device, page, referrer, hour, cart)

    def click_probabilities(self, request: Request) -> np.ndarray:
        """True click probability of every offer for this request (the oracle's view)."""
        c = request.customer
        logit = self._static_logit[c].copy()
        kind = self.offer_type
        on_cart = request.page == 3
        logit += np.where(kind == 2, 1.2 * on_cart + 0.8 * (40 <= request.cart_value < 100), 0.0)
        sensitive = self.truth.price_level[c] == 0
        logit += np.where(kind == 0, self.offer_discount / 20 * (0.9 if sensitive else -0.2), 0.0)
        logit += np.where(kind == 0, 0.5 * (request.referrer == 2), 0.0)
        logit += np.where(
            kind == 3,
            0.7 * (request.page == 1) + 0.5 * (request.referrer == 1) - 0.8 * on_cart,
            0.0,
        )
        logit += np.where(kind == 1, 0.6 * (request.device == 1), 0.0)
        logit += 0.3 * (request.hour >= 18) - 0.2 * (request.device == 0)
        return 1.0 / (1.0 + np.exp(-logit))

    def simulate_click(self, request: Request, offer: int, rng: np.random.Generator) -> float:
        return float(rng.random() < self.click_probabilities(request)[offer])
