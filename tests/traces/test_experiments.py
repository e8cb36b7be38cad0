"""create_experiment, the one place that says whether an experiment name is free (the form and the API show its
error as theirs)."""

from __future__ import annotations

import pytest
from django.db.models import QuerySet

from traces.actions import ExperimentNameTaken, create_experiment
from traces.models import Experiment

pytestmark = pytest.mark.django_db


def test_an_experiment_is_created_with_its_name_and_description_trimmed():
    experiment = create_experiment("  checkout-agent ", " the agent behind checkout\n")
    assert (experiment.name, experiment.description) == ("checkout-agent", "the agent behind checkout")


def test_a_name_in_use_is_refused_in_words_and_nothing_is_created():
    create_experiment("checkout-agent")
    with pytest.raises(ExperimentNameTaken, match=r"^An experiment named 'checkout-agent' already exists; pick another name\.$"):
        create_experiment(" checkout-agent ")
    assert Experiment.objects.count() == 1


def test_a_name_taken_between_the_check_and_the_insert_is_refused_the_same_way(monkeypatch):
    create_experiment("checkout-agent")
    monkeypatch.setattr(QuerySet, "exists", lambda self: False)  # as if another request created it just after the check
    with pytest.raises(ExperimentNameTaken, match="already exists"):
        create_experiment("checkout-agent")
    monkeypatch.undo()
    assert Experiment.objects.count() == 1
