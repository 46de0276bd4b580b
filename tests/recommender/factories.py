import factory

from recommender.models import Item, ModelVersion, Offer


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item

    external_id = factory.Sequence(lambda n: f"sku-{n:05d}")
    title = factory.Sequence(lambda n: f"Item {n}")
    category = "shoes"
    brand = "Acme"
    price = "19.90"
    in_stock = True


class OfferFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Offer

    name = factory.Sequence(lambda n: f"Offer {n}")
    item = factory.SubFactory(ItemFactory)
    discount_percent = "10.00"
    status = "active"


class ModelVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelVersion

    algorithm = "popularity"
    status = "ready"
    is_active = False
    n_items = 2
    n_interactions = 10
    training_seconds = 0.25
    metrics = factory.LazyFunction(dict)
    artifact = factory.LazyFunction(dict)
