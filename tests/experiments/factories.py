import factory

from experiments.models import Experiment, Variant


class ExperimentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Experiment

    key = factory.Sequence(lambda n: f"experiment-{n}")
    name = factory.Sequence(lambda n: f"Experiment {n}")
    kind = "ab"
    status = "draft"
    hypothesis = "A new banner sells more"


class VariantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Variant

    experiment = factory.SubFactory(ExperimentFactory)
    key = factory.Sequence(lambda n: f"variant-{n}")
    name = factory.LazyAttribute(lambda o: o.key)
    weight = 1
