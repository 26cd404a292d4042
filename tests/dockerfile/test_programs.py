"""The programs a Dockerfile's image runs itself, read from its instructions."""

from __future__ import annotations

from depaudit.dockerfile.parse import instructions
from depaudit.dockerfile.programs import programs_run


def _run(text: str, after: int = 0) -> dict[str, int]:
    return programs_run(instructions(text), after)


def test_exec_and_shell_forms_of_entrypoint_cmd_and_healthcheck() -> None:
    text = (
        "FROM ubuntu:22.04\n"
        'ENTRYPOINT ["/usr/bin/tini", "--"]\n'
        "HEALTHCHECK --interval=30s --timeout=3s CMD curl -fsS http://localhost:8080/ || exit 1\n"
        'CMD ["python3", "-m", "app"]\n'
        'SHELL ["/bin/bash", "-c"]\n'
    )
    assert _run(text) == {"tini": 2, "curl": 3, "python3": 4, "bash": 5}


def test_run_commands_after_the_install_with_their_wrappers_and_pip_git_urls() -> None:
    text = (
        "FROM ubuntu:22.04\n"
        "RUN wget -q https://example.org/x\n"
        "RUN apt-get install -y git gosu\n"
        "RUN cd /src && LANG=C sudo make install; echo done | tee /log \\\n"
        "    && pip install 'lib @ git+https://example.org/lib.git'\n"
        "RUN exec gosu app true\n"
    )
    # wget runs before the install (line 3): not counted.
    assert _run(text, after=3) == {"make": 4, "tee": 4, "pip": 4, "git": 4, "gosu": 6}


def test_what_is_not_a_program() -> None:
    text = "FROM ubuntu:22.04\nHEALTHCHECK NONE\nCMD $APP_START\nENTRYPOINT [not json\n"
    assert _run(text) == {"[not": 4}  # a broken exec form is read as a shell line, as Docker does
