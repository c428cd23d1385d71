"""rtclient.playbook's readers of an ansible-playbook run's output: the PLAY RECAP, the play timeline and the
changed tasks."""

from __future__ import annotations

from rtclient.playbook import changed_tasks, parse_recap, play_timeline

OUTPUT = """
PLAY [Rotation | Plan] ***********************************************************

TASK [Rotation | Select the secrets to rotate (rotate_secrets)] ******************
Wednesday 02 December 2026  14:50:01 +0000 (0:00:00.016)       0:00:00.016 *****
ok: [h1]

TASK [Rotation | Check the new values] *******************************************
Wednesday 02 December 2026  14:50:03 +0000 (0:00:02.000)       0:00:02.016 *****

PLAY [Rotation 1/6 | Redis servers] **********************************************

TASK [Gathering Facts] ***********************************************************
Wednesday 02 December 2026  14:50:05 +0000 (0:00:01.984)       0:00:04.000 *****

PLAY [Rotation 6/6 | Keep the new values] ****************************************

TASK [Rotation 6/6 | Move each new value in place] *******************************
Wednesday 02 December 2026  14:51:05 +0000 (0:01:00.000)       0:01:04.000 *****

PLAY RECAP ***********************************************************************
h1                         : ok=5    changed=2    unreachable=0    failed=0    skipped=1    rescued=0    ignored=0
Wednesday 02 December 2026  14:51:06 +0000 (0:00:01.500)       0:01:05.500 *****
"""


def test_play_timeline_gives_each_play_its_seconds():
    assert play_timeline(OUTPUT) == [("Rotation | Plan", 4.0), ("Rotation 1/6 | Redis servers", 60.0),
                                     ("Rotation 6/6 | Keep the new values", 1.5)]


def test_play_timeline_of_an_output_without_timestamps_is_empty():
    assert play_timeline("PLAY [x] ****\nok: [h1]\n") == []


def test_recap_counts():
    assert parse_recap(OUTPUT)["h1"]["changed"] == 2


def test_changed_tasks_name_each_task_and_handler_with_its_hosts():
    output = """
TASK [redis : configure | Write redis.conf] ****
ok: [h1]
changed: [h2] => (item=a)
changed: [h2] => (item=b)

TASK [django : environment | Write the environment file] ****
changed: [h3 -> localhost]
ok: [h4]

RUNNING HANDLER [redis : Restart redis] ****
changed: [h2]

TASK [nginx : Nothing changes] ****
ok: [h5]
"""
    assert changed_tasks(output) == {"redis : configure | Write redis.conf": {"h2"},
                                     "django : environment | Write the environment file": {"h3"},
                                     "redis : Restart redis": {"h2"}}


def test_changed_tasks_of_a_quiet_run_is_empty():
    assert changed_tasks("TASK [x] ****\nok: [h1]\nskipping: [h2]\n") == {}
