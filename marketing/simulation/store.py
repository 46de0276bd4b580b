"""The simulated store's hidden truth: customers' tastes, the catalog, the channel endpoints.

Pure Python + numpy, no Django. Everything is drawn from one seeded generator, so calling
`generate_truth(config)` again with the same config gives the same arrays: benchmarks score
recommenders, segments and bandits against `true_affinity` without touching a database.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

import numpy as np

CATEGORIES = (
    "electronics", "books", "fashion", "home", "beauty", "sports",
    "toys", "grocery", "garden", "automotive", "music", "pets",
)  # fmt: skip
CATEGORY_BASE_PRICE = np.array([180, 16, 45, 60, 24, 55, 30, 9, 35, 70, 20, 22], dtype=float)
CATEGORY_NOUNS = (
    ("Headphones", "Speaker", "Charger", "Monitor"),
    ("Novel", "Cookbook", "Atlas", "Biography"),
    ("Jacket", "Sneakers", "Scarf", "Jeans"),
    ("Lamp", "Blanket", "Mug Set", "Cushion"),
    ("Serum", "Lipstick", "Shampoo", "Face Mask"),
    ("Yoga Mat", "Dumbbells", "Running Shorts", "Bottle"),
    ("Puzzle", "Robot Kit", "Plush Bear", "Board Game"),
    ("Coffee Beans", "Olive Oil", "Granola", "Tea Box"),
    ("Planter", "Hose", "Seed Kit", "Pruner"),
    ("Wiper Set", "Car Charger", "Seat Cover", "Dash Cam"),
    ("Vinyl", "Guitar Strings", "Ukulele", "Metronome"),
    ("Dog Bed", "Cat Tree", "Leash", "Pet Fountain"),
)
ADJECTIVES = ("Classic", "Pro", "Eco", "Smart", "Mini", "Ultra", "Everyday", "Deluxe")
BRANDS = (
    "Acme", "Northwind", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Soylent",
    "Stark", "Wayne", "Tyrell", "Cyberdyne", "Wonka", "Gringotts", "Oscorp", "Zorg",
    "Monarch", "Aperture",
)  # fmt: skip
BRANDS_PER_CATEGORY = 3
PRICE_LEVELS = ("budget", "standard", "premium")
PRICE_LEVEL_MULTIPLIER = np.array([0.55, 1.0, 2.2])
FIRST_NAMES = (
    "Ada", "Ben", "Chloe", "Dan", "Eva", "Finn", "Grace", "Hugo", "Iris", "Jon", "Kim", "Leo",
    "Mia", "Nils", "Olga", "Paul", "Rosa", "Sam", "Tara", "Uma", "Vic", "Wen", "Yara", "Zoe",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Garcia", "Muller", "Rossi", "Dubois", "Silva", "Novak", "Kowalski", "Jensen",
    "Tanaka", "Okafor", "Larsen", "Moreau", "Costa", "Berg", "Nagy",
)  # fmt: skip
COUNTRIES = (("US", "en", "America/New_York"), ("GB", "en", "Europe/London"),
             ("DE", "de", "Europe/Berlin"), ("FR", "fr", "Europe/Paris"),
             ("ES", "es", "Europe/Madrid"), ("BR", "pt", "America/Sao_Paulo"))  # fmt: skip
COUNTRY_WEIGHTS = np.array([0.35, 0.15, 0.15, 0.12, 0.1, 0.13])
# Channel codes shared with the event generator; the strings are profiles' choices.
ENDPOINT_CHANNELS = ("email", "sms", "push")
LATENT_DIM = 8
N_OFFERS = 5
DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)
US_PER_DAY = 86_400_000_000


@dataclass(frozen=True)
class StoreConfig:
    customers: int = 3000
    items: int = 400
    days: int = 60
    seed: int = 42
    start: datetime = DEFAULT_START
    taste_concentration: float = 0.35  # Dirichlet alpha: lower means pickier customers
    mean_sessions_per_day: float = 0.16
    view_temperature: float = 1.3  # softmax(beta * affinity) picks what a customer views
    cold_start_customers: float = 0.15  # share signing up in the last 10% of the window
    late_items: float = 0.10  # share released in the last 15% of the window
    opt_out_rate: float = 0.08

    def __post_init__(self) -> None:
        if self.customers < 1 or self.items < N_OFFERS or self.days < 1:
            raise ValueError("need customers >= 1, items >= 5 and days >= 1")
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")

    @property
    def start_us(self) -> int:
        return int(self.start.timestamp()) * 1_000_000 + self.start.microsecond

    @property
    def end_us(self) -> int:
        return self.start_us + self.days * US_PER_DAY


@dataclass(frozen=True, eq=False)
class StoreTruth:
    """Arrays indexed by customer index (0..C-1) or item index (0..I-1)."""

    config: StoreConfig
    taste: np.ndarray  # (C, K) preference over categories, rows sum to 1
    price_level: np.ndarray  # (C,) preferred price level 0..2
    activity: np.ndarray  # (C,) expected sessions per active day
    preferred_channel: np.ndarray  # (C,) index into ENDPOINT_CHANNELS
    preferred_hour: np.ndarray  # (C,) 0..23, UTC
    signup_us: np.ndarray  # (C,) epoch microseconds; before start for existing customers
    customer_latent: np.ndarray  # (C, LATENT_DIM)
    first_name: np.ndarray  # (C,) index into FIRST_NAMES
    last_name: np.ndarray  # (C,) index into LAST_NAMES
    country: np.ndarray  # (C,) index into COUNTRIES
    has_endpoint: np.ndarray  # (C, 3) bool: email, sms, push
    opted_out: np.ndarray  # (C, 3) bool, only where has_endpoint
    push_token: np.ndarray  # (C, 16) uint8
    item_category: np.ndarray  # (I,)
    item_brand: np.ndarray  # (I,) index into BRANDS
    item_noun: np.ndarray  # (I,)
    item_adjective: np.ndarray  # (I,)
    item_price_level: np.ndarray  # (I,)
    item_price: np.ndarray  # (I,) rounded to cents
    item_in_stock: np.ndarray  # (I,) bool
    item_release_us: np.ndarray  # (I,) epoch microseconds
    item_quality: np.ndarray  # (I,)
    item_latent: np.ndarray  # (I, LATENT_DIM)
    offer_items: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def n_customers(self) -> int:
        return len(self.signup_us)

    @property
    def n_items(self) -> int:
        return len(self.item_price)

    def true_affinity_block(self, customers: np.ndarray | slice) -> np.ndarray:
        """Affinity of several customers for every item, standardised per customer.

        This is the utility the events are drawn from: views ~ softmax(beta * affinity),
        and click / cart / purchase probabilities rise with it.
        """
        taste = self.taste[customers]
        raw = np.log(taste[:, self.item_category] + 0.02)
        raw += self.item_quality[None, :]
        mismatch = np.abs(self.price_level[customers][:, None] - self.item_price_level[None, :])
        raw -= 0.8 * mismatch
        raw += 0.9 * (self.customer_latent[customers] @ self.item_latent.T)
        raw -= raw.mean(axis=1, keepdims=True)
        raw /= raw.std(axis=1, keepdims=True) + 1e-9
        return raw

    def true_affinity(self, customer_index: int) -> np.ndarray:
        return self.true_affinity_block(np.array([customer_index]))[0]

    def true_top_items(self, customer_index: int, k: int) -> np.ndarray:
        """Item indexes the customer likes most, best first (ties broken by index)."""
        affinity = self.true_affinity(customer_index)
        order = np.lexsort((np.arange(len(affinity)), -affinity))
        return order[:k]

    @cached_property
    def customer_external_ids(self) -> list[str]:
        return [f"c{i + 1:07d}" for i in range(self.n_customers)]

    @cached_property
    def item_external_ids(self) -> list[str]:
        return [f"i{i + 1:06d}" for i in range(self.n_items)]

    def item_titles(self) -> list[str]:
        return [
            f"{BRANDS[b]} {ADJECTIVES[a]} {CATEGORY_NOUNS[c][n]}"
            for b, a, c, n in zip(
                self.item_brand.tolist(),
                self.item_adjective.tolist(),
                self.item_category.tolist(),
                self.item_noun.tolist(),
                strict=True,
            )
        ]

    def endpoint_address(self, customer_index: int, channel: int) -> str:
        i = customer_index
        if channel == 0:
            first = FIRST_NAMES[self.first_name[i]].lower()
            last = LAST_NAMES[self.last_name[i]].lower()
            return f"{first}.{last}.{i + 1}@example.com"
        if channel == 1:
            return f"+1555{i + 1:07d}"
        return "push-" + self.push_token[i].tobytes().hex()


def _split_times(rng: np.random.Generator, n: int, days: int, late_share: float, late_from: float):
    """Offsets in days: half before the window, the rest inside, `late_share` arriving late."""
    u = rng.random(n)
    late = u < late_share
    before = (u >= late_share) & (u < late_share + 0.5)
    offsets = rng.random(n)
    return np.where(
        late,
        late_from * days + offsets * (1 - late_from) * days,
        np.where(before, -365.0 * offsets, offsets * late_from * days),
    )


def generate_truth(config: StoreConfig) -> StoreTruth:
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0]))
    c_count, i_count, k = config.customers, config.items, len(CATEGORIES)

    taste = rng.dirichlet(np.full(k, config.taste_concentration), size=c_count)
    price_level = rng.choice(3, size=c_count, p=[0.4, 0.42, 0.18]).astype(np.int8)
    activity = rng.gamma(2.0, config.mean_sessions_per_day / 2.0, size=c_count)
    hour_mode = rng.choice(np.array([8, 12, 20]), size=c_count, p=[0.25, 0.25, 0.5])
    preferred_hour = ((hour_mode + np.round(rng.normal(0, 1.5, c_count))) % 24).astype(np.int8)
    signup_days = _split_times(rng, c_count, config.days, config.cold_start_customers, 0.9)
    signup_us = config.start_us + np.round(signup_days * US_PER_DAY).astype(np.int64)
    customer_latent = rng.normal(0, 1 / np.sqrt(LATENT_DIM), size=(c_count, LATENT_DIM))
    first_name = rng.integers(0, len(FIRST_NAMES), c_count).astype(np.int16)
    last_name = rng.integers(0, len(LAST_NAMES), c_count).astype(np.int16)
    country = rng.choice(len(COUNTRIES), size=c_count, p=COUNTRY_WEIGHTS).astype(np.int8)
    has_endpoint = rng.random((c_count, 3)) < np.array([0.95, 0.60, 0.40])
    opted_out = has_endpoint & (rng.random((c_count, 3)) < config.opt_out_rate)
    push_token = rng.integers(0, 256, size=(c_count, 16), dtype=np.uint8)
    channel_weight = has_endpoint * np.array([0.5, 0.2, 0.3]) + 1e-12
    channel_cdf = np.cumsum(channel_weight / channel_weight.sum(axis=1, keepdims=True), axis=1)
    preferred_channel = (rng.random((c_count, 1)) > channel_cdf).sum(axis=1).clip(0, 2)

    category = rng.integers(0, k, i_count).astype(np.int16)
    brand = (category * BRANDS_PER_CATEGORY + rng.integers(0, BRANDS_PER_CATEGORY, i_count)) % len(
        BRANDS
    )
    item_level = rng.choice(3, size=i_count, p=[0.35, 0.45, 0.2]).astype(np.int8)
    price = CATEGORY_BASE_PRICE[category] * PRICE_LEVEL_MULTIPLIER[item_level]
    price = np.round(price * rng.lognormal(0, 0.2, i_count), 2).clip(0.99, None)
    release_days = _split_times(rng, i_count, config.days, config.late_items, 0.85)
    truth = StoreTruth(
        config=config,
        taste=taste,
        price_level=price_level,
        activity=activity,
        preferred_channel=preferred_channel.astype(np.int8),
        preferred_hour=preferred_hour,
        signup_us=signup_us,
        customer_latent=customer_latent,
        first_name=first_name,
        last_name=last_name,
        country=country,
        has_endpoint=has_endpoint,
        opted_out=opted_out,
        push_token=push_token,
        item_category=category,
        item_brand=brand.astype(np.int16),
        item_noun=rng.integers(0, 4, i_count).astype(np.int8),
        item_adjective=rng.integers(0, len(ADJECTIVES), i_count).astype(np.int8),
        item_price_level=item_level,
        item_price=price,
        item_in_stock=rng.random(i_count) < 0.92,
        item_release_us=config.start_us + np.round(release_days * US_PER_DAY).astype(np.int64),
        item_quality=rng.normal(0, 0.5, i_count),
        item_latent=rng.normal(0, 1 / np.sqrt(LATENT_DIM), size=(i_count, LATENT_DIM)),
    )
    object.__setattr__(truth, "offer_items", _popular_items(truth, N_OFFERS))
    return truth


def item_popularity(truth: StoreTruth, *, sample: int = 512) -> np.ndarray:
    """Expected share of views per item over (a fixed sample of) customers."""
    rows = np.arange(min(sample, truth.n_customers))
    logits = truth.config.view_temperature * truth.true_affinity_block(rows)
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (weights / weights.sum(axis=1, keepdims=True)).mean(axis=0)


def _popular_items(truth: StoreTruth, n: int) -> np.ndarray:
    """The offers' items: the most viewed items that exist from day one and are in stock."""
    popularity = item_popularity(truth)
    eligible = (truth.item_release_us <= truth.config.start_us) & truth.item_in_stock
    popularity = np.where(eligible, popularity, -1.0)
    return np.lexsort((np.arange(len(popularity)), -popularity))[:n]


def save_truth(truth: StoreTruth, path: str) -> None:
    """Write the truth as .npz (config as scalars) for tools outside this codebase."""
    arrays = {
        name: getattr(truth, name) for name in StoreTruth.__dataclass_fields__ if name != "config"
    }
    cfg = truth.config
    np.savez_compressed(
        path,
        **arrays,
        item_external_ids=np.array(truth.item_external_ids),
        customer_external_ids=np.array(truth.customer_external_ids),
        categories=np.array(CATEGORIES),
        config_customers=cfg.customers,
        config_items=cfg.items,
        config_days=cfg.days,
        config_seed=cfg.seed,
        config_start_us=cfg.start_us,
    )
