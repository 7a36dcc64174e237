"""Policy commands: `policy lint`."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape

from pipelines.commands.console import console
from pipelines.exit_codes import EXIT_OK, EXIT_USAGE


def policy_lint(file: str | Path) -> int:
    """Every problem of a policy file, one line each naming the key; exit 0 clean, 2 otherwise."""
    from tasks.policy import policy_problems

    policy, problems = policy_problems(file)
    for problem in problems:
        console.print(f"[red]error[/]: {escape(problem)}", highlight=False, soft_wrap=True)
    if policy is None:
        console.print(f"{escape(str(file))}: [red]errors[/] ({len(problems)})", highlight=False, soft_wrap=True)
        return EXIT_USAGE
    envs = ", ".join(f"{env} ({', '.join(rules.transitions) or 'auto-approved'})"
                     for env, rules in policy.approval.environments.items())
    console.print(f"{escape(str(file))}: [green]ok[/] (policy {escape(policy.name)}; environments: {escape(envs)})",
                  highlight=False, soft_wrap=True)
    return EXIT_OK
