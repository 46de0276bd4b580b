import factory

from experiments.models import Experiment, Variant


class ExperimentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Experiment

    name = factory.Sequence(lambda n: f"Experiment {n}")
    kind = "ab"
    status = "draft"
    hypothesis = "A new banner sells more"


class VariantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Variant

    experiment = factory.SubFactory(ExperimentFactory)
    name = factory.Sequence(lambda n: f"variant-{n}")
    weight = 1
