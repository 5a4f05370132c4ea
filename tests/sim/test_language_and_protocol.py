import pytest

from tracegen.sim.instructions import MAX_WORDS, METAWORLD, ROBOSUITE, instructions
from tracegen.sim.protocol import AVDC_METAWORLD, PROTOCOLS, Protocol


def test_every_task_has_instructions_in_three_styles():
    from tracegen.sim.metaworld_env import TASKS as MW
    from tracegen.sim.robosuite_env import TASKS as RS

    assert set(METAWORLD) == set(MW) and set(ROBOSUITE) == set(RS)
    for table in (METAWORLD, ROBOSUITE):
        for task, text in table.items():
            styles = {"short": text.short, "steps": (text.steps,), "casual": (text.casual,)}
            for style, sentences in styles.items():
                for s in sentences:
                    assert 3 <= len(s.split()) <= MAX_WORDS[style], (task, style, s)
            assert len(set(text.all())) == 4, task
    assert instructions("metaworld", "drawer-open")[0] == "open the drawer"
    with pytest.raises(ValueError, match="known: Lift"):
        instructions("robosuite", "Juggle")


def test_avdc_protocol_definition():
    from tracegen.sim.metaworld_env import TASKS

    p = AVDC_METAWORLD
    assert PROTOCOLS["avdc-metaworld"] is p
    assert len(p.tasks) == 11 and set(p.tasks) <= set(TASKS)
    assert p.cameras == ("corner", "corner2", "corner3") and p.eval_seeds == tuple(range(25))
    assert p.max_steps == 500 and p.demos_per_task_camera == 5 and p.num_episodes == 825 == len(p.episodes())
    assert p.episodes()[0] == ("door-open", "corner", 0)
    entries = p.corpus_entries()
    assert len(entries) == 11 and entries[0]["seed"] > max(p.eval_seeds) and entries[0]["episodes"] == 5
    with pytest.raises(ValueError, match="disjoint"):
        Protocol("x", "metaworld", ("reach",), ("corner",), (0, 1), 500, 5, 5, 1, (240, 320), "v3")
