"""`lockgate init DIR --from DATA --label COLUMN`: a project folder (tasks/project_init.py) and what to do next."""

from __future__ import annotations

import argparse

from rich.markup import escape

from pipelines.commands.console import console
from pipelines.exit_codes import EXIT_OK


def init_command(args: argparse.Namespace) -> int:
    from tasks.project_init import init_project

    with console.status(f"inferring a contract from {args.data}"):
        made = init_project(args.folder, args.data, label=args.label, golden=args.golden, name=args.name,
                            id_column=args.id_column)
    show_init(made)
    return EXIT_OK


def show_init(made) -> None:
    def line(text: str) -> None:
        console.print(text, highlight=False, soft_wrap=True)

    line(f"project [bold]{escape(made.name)}[/] in {escape(str(made.folder))} ({made.rows} rows read)")
    line(f"  contract: {escape(str(made.contract))} (draft: label {escape(made.label)} ({made.task}), id "
         f"{escape(made.id_column)}, {len(made.numeric_features)} numeric and {len(made.categorical_features)} "
         f"categorical feature(s), slices: {escape(', '.join(made.slice_columns) or 'none')})")
    line(f"  policy:   {escape(str(made.policy))}")
    line(f"  data:     reference {escape(str(made.reference))}"
         + (f", golden {escape(str(made.golden))}" if made.golden else " (no golden set yet: name one in "
            "lockgate.yaml, or pass --golden to `run lifecycle`)"))
    line(f"  project:  {escape(str(made.project_file))}")
    for note in made.notes:
        line(f"  [yellow]note[/]: {escape(note)}")
    line(f"next: cd {escape(str(made.folder))}; review contract.yaml and policy.yaml (`lockgate contract lint "
         "contract.yaml`, `lockgate policy lint policy.yaml`); set `model:` in lockgate.yaml; `lockgate register "
         "...`; `lockgate run lifecycle --version N`")
