"""The `copilot` command line: ingest, search, ask, cases, plan, eval, serve."""

from __future__ import annotations

import atexit
import functools
import json
import os
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from copilot.errors import CopilotError
from copilot.models import SearchFilters, SearchResult
from copilot.settings import Settings

app = typer.Typer(help="Best-practice copilot for SaaS go-to-market teams (销售 / 客户成功 / 客服).",
                  no_args_is_help=True, add_completion=False)
console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # messages stay one line: paths and file:row:column copy whole

DataDir = Annotated[Optional[Path], typer.Option("--data-dir", envvar="COPILOT_DATA_DIR",
                                                 help="Where the index and app data live")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON")]
ServerOpt = Annotated[Optional[str], typer.Option(
    "--server", envvar="COPILOT_URL", show_default=False,
    help="Ask a running copilot server (e.g. https://copilot.example.com) instead of the local data dir")]
ServerKeyOpt = Annotated[Optional[str], typer.Option(
    "--key", envvar="COPILOT_KEY", show_default=False, help="Your key on that server (from `copilot users add`)")]


def _settings(data_dir: Path | None) -> Settings:
    return Settings(data_dir=data_dir) if data_dir else Settings()


def _progress_bar(disable: bool = False):
    """Counts, rate and time left on stderr, for the commands with a long step (rich.progress is
    imported here: the other commands do not pay for it)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.speed} /s"),
               TimeRemainingColumn())
    # Not on a pipe or a log file: a transient bar only leaves a blank line there.
    return Progress(*columns, console=err_console, disable=disable or not err_console.is_terminal, transient=True)


def _copilot(data_dir: Path | None):
    from copilot.service import Copilot

    return Copilot(_settings(data_dir))


def handle_errors(func):
    """Turn CopilotError into a message on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except CopilotError as exc:
            err_console.print(f"[red]Error:[/red] {exc}")
            raise typer.Exit(2) from None

    return wrapper


def _print_json(data) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


@app.command()
@handle_errors
def ingest(paths: Annotated[list[str], typer.Argument(
               help="Files or folders: documents (txt, md, html, pdf, docx) and sheets of FAQs, cases, playbooks, accounts or account activity (xlsx, csv)")],
           prune: Annotated[bool, typer.Option("--prune", help="Also drop indexed files that no longer exist")] = False,
           data_dir: DataDir = None, json_out: JsonFlag = False, server: ServerOpt = None,
           key: ServerKeyOpt = None) -> None:
    """Add documents and spreadsheets to the knowledge; unchanged files are skipped, removed ones dropped.
    A bad sheet row is reported as file:row:column and the rest of the sheet still loads.
    With --server: each file is uploaded there (a knowledge manager's key); one named like an earlier
    upload replaces what that one brought."""
    if server:
        if prune:
            raise typer.BadParameter("a server keeps its own copies of uploads: take one out on its knowledge page",
                                     param_hint="--prune")
        _ingest_on_server(paths, server, key, json_out)
        return
    copilot = _copilot(data_dir)
    with _progress_bar(disable=json_out) as progress:
        task = progress.add_task("embedding", total=None)
        report = copilot.ingest(paths, actor=_actor(), prune=prune, progress=lambda n: progress.advance(task, n))
    copilot.decline_reference()  # measured now (a second or two) rather than on the first question
    documents = report.documents
    if json_out:
        _print_json({"documents": documents.__dict__, "items": report.items.__dict__ if report.items else None,
                     "sheets": [{"source": s.source, "kind": s.kind, "changes": s.changes.__dict__,
                                 "errors": s.errors, "notes": s.notes} for s in report.sheets],
                     "failed": report.failed, "pruned": report.pruned})
    else:
        if not documents.empty:
            console.print(f"documents: {documents.summary()}")
        for sheet in report.sheets:
            console.print(f"sheet: {sheet.summary()}")
            for note in sheet.notes:
                err_console.print(f"[yellow]note:[/yellow] {note}")
        if report.items and (changed := len(report.items.added) + len(report.items.updated) + len(report.items.removed)):
            # Counted per sheet and knowledge file (the rows are counted on the lines above).
            console.print(f"index: {changed} sheet(s) or knowledge file(s) re-indexed, {report.items.chunks} "
                          f"passages, {report.items.embedded} embedded in {report.items.seconds:.1f}s")
        for source in report.pruned:
            console.print(f"removed: {source}")
    for sheet in report.sheets:
        for error in sheet.errors:
            err_console.print(f"[red]row skipped:[/red] {error}")
    for given, message in [*documents.failed, *report.failed]:
        err_console.print(f"[red]failed:[/red] {given}: {message}")
    if not report.ok:
        raise typer.Exit(1)


def _ingest_on_server(paths: list[str], server: str, key: str | None, json_out: bool) -> None:
    from copilot.files import expand_paths
    from copilot.knowledge.parsers import SHEET_SUFFIXES, SUPPORTED
    from copilot.remote import Remote, RemoteError

    files, _, skipped = expand_paths(paths, SUPPORTED | SHEET_SUFFIXES)
    remote = Remote(server, key)
    imported: list[tuple[str, dict]] = []
    failed: list[tuple[str, str]] = []
    for given, path in files:
        try:
            imported.append((given, remote.upload("/api/knowledge/import", path)))
        except RemoteError as exc:
            if exc.status in (None, 401, 403):  # the server or the key, not this file: the rest would fail alike
                raise
            failed.append((given, str(exc)))
    if json_out:
        _print_json({"imported": [{"file": given, **result} for given, result in imported],
                     "failed": failed, "skipped": skipped})
    for given, result in imported:
        if not json_out:
            for sheet in result["sheets"]:
                console.print(f"sheet: {given} ({sheet['kind']}): {sheet['added']} added, {sheet['updated']} updated, "
                              f"{sheet['unchanged']} unchanged, {sheet['removed']} removed, "
                              f"{len(sheet['errors'])} rows with errors")
                for note in sheet["notes"]:
                    err_console.print(f"[yellow]note:[/yellow] {note}")
            for verb in ("added", "updated"):
                for _ in result[f"documents_{verb}"]:
                    console.print(f"document {verb}: {given}")
        for sheet in result["sheets"]:
            for error in sheet["errors"]:
                err_console.print(f"[red]row skipped:[/red] {given}: {error}")
        failed += [(given, message) for message in result["failed"]]
    for given, message in failed:
        err_console.print(f"[red]failed:[/red] {given}: {message}")
    if failed or any(sheet["errors"] for _, result in imported for sheet in result["sheets"]):
        raise typer.Exit(1)


@app.command()
@handle_errors
def remove(paths: Annotated[list[str], typer.Argument(help="Documents or sheets to take out of the knowledge")],
           data_dir: DataDir = None) -> None:
    """Take documents or spreadsheets out of the knowledge (the files themselves are left alone)."""
    for given in _copilot(data_dir).remove(paths, actor=_actor()):
        console.print(f"removed: {given}")


@app.command()
@handle_errors
def documents(data_dir: DataDir = None, json_out: JsonFlag = False) -> None:
    """The documents and sheets in the knowledge, with what each brought (keys for `copilot remove`)."""
    sources = _copilot(data_dir).sources()
    if json_out:
        _print_json([s.model_dump(mode="json") for s in sources])
        return
    table = Table("kind", "file", "passages", "items", "updated", "key")
    for s in sources:
        table.add_row(s.kind, s.name + ("" if s.file_exists else " [red](file gone)[/red]"), str(s.passages),
                      str(s.items or ""), f"{s.updated_at:%Y-%m-%d %H:%M}" if s.updated_at else "", s.key)
    console.print(table if sources else "no documents or sheets yet: `copilot ingest PATH`")


@app.command()
@handle_errors
def export(path: Annotated[Path, typer.Argument(help="The .xlsx or .csv file to write")],
           kind: Annotated[str, typer.Option("--kind", help="faq, case or playbook")],
           template: Annotated[bool, typer.Option("--template", help="Only the header row: a blank sheet to fill")] = False,
           data_dir: DataDir = None, server: ServerOpt = None, key: ServerKeyOpt = None) -> None:
    """Write the knowledge of one kind as a sheet, in the columns `copilot ingest` reads back."""
    if server:
        from copilot.files import write_bytes_atomically
        from copilot.remote import Remote

        sheet_format = path.suffix.lower().lstrip(".")
        if sheet_format not in ("xlsx", "csv"):
            raise typer.BadParameter(f"{path}: write a .xlsx or .csv file", param_hint="PATH")
        content = Remote(server, key).download("/api/knowledge/export",
                                               {"kind": kind, "format": sheet_format, "template": template})
        write_bytes_atomically(path, content)
        console.print(f"wrote {path} (from {server})")
        return
    count = _copilot(data_dir).export(kind, path, template=template)
    console.print(f"wrote {path}" + ("" if template else f" ({count} {kind} items)"))


@app.command()
@handle_errors
def init(folder: Annotated[Path, typer.Argument(help="The new knowledge folder")],
         sample: Annotated[bool, typer.Option("--sample", help="Copy the demo pack (sample data) instead")] = False) -> None:
    """Create a company knowledge folder; point COPILOT_KNOWLEDGE_DIR at it."""
    from copilot.knowledge.workspace import init_workspace
    from copilot.settings import bundled

    written = init_workspace(folder, bundled("knowledge"), sample=sample)
    console.print(f"created {folder} ({len(written)} files). Next:")
    console.print(f"  export COPILOT_KNOWLEDGE_DIR={folder.resolve()}")
    console.print(f"  copilot ingest {folder / 'templates' / 'faq.xlsx'}   # after filling it in, or your own sheets and documents")


@app.command()
@handle_errors
def search(query: str, k: Annotated[int, typer.Option("--k", min=1, max=100)] = 5,
           kind: Annotated[Optional[list[str]], typer.Option("--kind", help="case, faq, playbook, doc")] = None,
           industry: Optional[str] = None, province: Optional[str] = None, region: Optional[str] = None,
           tier: Optional[str] = None,
           audience: Annotated[Optional[list[str]], typer.Option(help="public, internal")] = None,
           data_dir: DataDir = None, json_out: JsonFlag = False, server: ServerOpt = None,
           key: ServerKeyOpt = None) -> None:
    """Hybrid search (BM25 + vectors) over the pack and the ingested documents."""
    try:
        filters = SearchFilters(kinds=kind, audiences=audience, industry=industry, province=province,
                                region=region, tier=tier)
    except ValidationError as exc:
        raise typer.BadParameter("; ".join(
            f"--{str(e['loc'][0]).removesuffix('s')} {e.get('input')!r}: {e['msg']}" for e in exc.errors())) from None
    if server:
        if audience:
            raise typer.BadParameter("a server decides what your key may read", param_hint="--audience")
        from copilot.remote import Remote

        body = {"query": query, "k": k, **filters.model_dump(exclude={"audiences"}, exclude_none=True)}
        found = SearchResult.model_validate(Remote(server, key).post("/api/search", body))
    else:
        found = _copilot(data_dir).retriever.search(query, k=k, filters=filters)
    if json_out:
        _print_json(found.model_dump())
        return
    table = Table("#", "score", "kind", "source", "passage", show_lines=True)
    for i, e in enumerate(found.results, 1):
        table.add_row(str(i), f"{e.score:.3f}", e.kind, e.source, f"[bold]{e.title}[/bold]\n{e.text[:240]}")
    console.print(table)


@app.command()
@handle_errors
def ask(question: str,
        role: Annotated[str, typer.Option(help="sales | csm | support")] = "support",
        data_dir: DataDir = None, json_out: JsonFlag = False, server: ServerOpt = None,
        key: ServerKeyOpt = None) -> None:
    """Ask a question: answer first, then the explanation and the sources."""
    from rich.markdown import Markdown

    from copilot.models import AskResponse

    if role not in ("sales", "csm", "support"):
        raise typer.BadParameter(f"unknown role {role!r}: use sales, csm or support", param_hint="--role")
    if server:
        from copilot.remote import Remote

        response = AskResponse.model_validate(Remote(server, key).post("/api/ask", {"question": question, "role": role}))
    else:
        from copilot.pipeline import answer

        copilot = _copilot(data_dir)
        response = answer(copilot.deps, question, role, actor=f"cli:{role}")  # type: ignore[arg-type]
    if json_out:
        _print_json(response.model_dump(mode="json"))
        return
    console.print(Markdown(response.answer))
    if response.explanation:
        console.print(f"[dim]{response.explanation}[/dim]")
    for i, c in enumerate(response.citations, 1):
        console.print(f"[dim][{i}] {c.title} — {c.source}[/dim]")
    for choice in response.choices:
        console.print(f"[cyan]? {choice}[/cyan]")
    for action in response.actions:
        console.print(f"[yellow]待确认操作 {action.id}: {action.summary}[/yellow]")


class _EvalGroup(TyperGroup):
    """`copilot eval [FILES]` still scores the eval questions; `copilot eval insight` the account insight."""

    def parse_args(self, ctx, args):
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = ["questions", *args]
        return super().parse_args(ctx, args)


eval_app = typer.Typer(cls=_EvalGroup, help="Measure the copilot: the eval questions (default) or the account insight.")
app.add_typer(eval_app, name="eval")


@eval_app.command("questions")
@handle_errors
def eval_(files: Annotated[Optional[list[Path]], typer.Argument(help="Eval YAML files or folders")] = None,
          out: Annotated[Optional[Path], typer.Option(help="Per-question results (JSONL)")] = None,
          data_dir: DataDir = None, json_out: JsonFlag = False) -> None:
    """Score the eval questions, dev and test side by side: hit@1, hit@5, MRR per role and style for each
    retrieval mode; declines and answer facts for the production pipeline."""
    from copilot import evals
    from copilot.settings import PROJECT_ROOT

    copilot = _copilot(data_dir)
    questions = evals.load_questions(files or evals.default_eval_paths(PROJECT_ROOT / "evals", copilot.settings.data_dir))
    if not questions:
        raise CopilotError("No eval questions found")
    from copilot.pipeline import threshold

    results = evals.run_eval(questions, evals.pipeline_search(copilot.deps))
    metrics = evals.summarize(results, threshold(copilot.deps))
    out = out or copilot.settings.data_dir / "evals" / f"results-{datetime.now():%Y%m%d-%H%M%S}.jsonl"
    evals.write_results(results, metrics, out)
    if json_out:
        _print_json({"metrics": metrics, "results_file": str(out)})
        return
    splits = [split for split in metrics if split != "threshold"]
    table = Table("mode", "group", *(f"{split} n · hit@1 · hit@5 · MRR" for split in splits))
    for mode in evals.MODES:
        groups = sorted({g for split in splits for g in metrics[split].get(mode, {})},
                        key=lambda g: (g != "overall", g))
        for group in groups if mode == "hybrid" else ["overall"]:
            cells = []
            for split in splits:
                m = metrics[split].get(mode, {}).get(group)
                cells.append(f"{m['n']:>3} · {m['hit@1']:.3f} · {m['hit@5']:.3f} · {m['mrr']:.3f}" if m else "-")
            table.add_row(mode, group, *cells)
    console.print(table)
    for split in splits:
        console.print(f"{split}: declines {metrics[split].get('declines')}")
        console.print(f"{split}: answers {metrics[split].get('answers', {}).get('overall')}")
    console.print(f"per-question results: {out}")


@eval_app.command("insight")
@handle_errors
def eval_insight(sample: Annotated[bool, typer.Option("--sample/--workspace",
                                                      help="The sample book (default) or the imported accounts")] = True,
                 accounts: Annotated[int, typer.Option(min=20, max=20_000, help="Accounts in the sample book")] = 600,
                 data_dir: DataDir = None, json_out: JsonFlag = False) -> None:
    """Backtest renewal risk on held-out accounts (AUC, precision at the top 10 %) and measure how many
    high-risk accounts get a next best action backed by a playbook."""
    from datetime import date

    from copilot.accounts import evaluate

    copilot = _copilot(data_dir)
    result = (evaluate.evaluate_sample(copilot.pack, n=accounts) if sample
              else evaluate.evaluate_workspace(copilot.accounts, copilot.pack, date.today()))
    if json_out:
        _print_json(result.model_dump(mode="json"))
        return
    from rich.table import Column

    table = Table("指标", "数值", Column("说明", overflow="fold"))
    for row in evaluate.rows(result):
        table.add_row(*row)
    console.print(table)


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@app.command()
@handle_errors
def serve(host: Annotated[Optional[str], typer.Option(help="Default: COPILOT_HOST or 127.0.0.1")] = None,
          port: Annotated[Optional[int], typer.Option(min=1, max=65535, help="Default: COPILOT_PORT or 8000")] = None,
          workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
          data_dir: DataDir = None) -> None:
    """Run the HTTP API, the OpenAI-compatible endpoint and the web UI."""
    import os

    import uvicorn

    settings = _settings(data_dir)
    host, port = host or settings.host, port or settings.port
    copilot = _copilot(data_dir)
    if host not in LOOPBACK and not (settings.api_keys or copilot.users.any()):
        raise CopilotError(f"Refusing to serve on {host} with nobody set up: add people "
                           "(copilot users add NAME --role admin) or bind to 127.0.0.1")
    if data_dir:
        os.environ["COPILOT_DATA_DIR"] = str(data_dir)
    os.environ["COPILOT_HOST"] = host  # the workers' apps decide from it which Host headers to answer
    _prepare_index(copilot)
    console.print(f"Copilot on http://{host}:{port}  (API docs: /docs, UI: /)")
    uvicorn.run("copilot.api.asgi:app", host=host, port=port, workers=workers, log_level="info")


@app.command("mcp")
@handle_errors
def mcp_stdio(key: Annotated[Optional[str], typer.Option(
                  "--key", envvar="COPILOT_KEY", show_default=False,
                  help="Whose identity the tools act with (from `copilot users add`); needed once people are set up")] = None,
              data_dir: DataDir = None) -> None:
    """Serve the copilot as an MCP server over stdio (for Claude Desktop, Cursor…); over HTTP, `serve` has /mcp.
    Tools only propose actions: a person confirms them in the web UI or with `copilot actions confirm`."""
    from copilot.api.deps import LOCAL, keys_required, principal_for
    from copilot.mcp_server import build_server

    copilot = _copilot(data_dir)
    if key:
        principal = principal_for(copilot, key)
        if principal is None:
            raise CopilotError("Unknown or disabled key: ask an admin for a new one (copilot users key NAME)")
    elif keys_required(copilot):
        raise CopilotError("People are set up on this copilot: say who you are with --key (or COPILOT_KEY)")
    else:
        principal = LOCAL
    _ = copilot.action_runner  # settles actions a crashed process left executing
    _ = copilot.deps  # load the index, the model and the classifier before the first call
    err_console.print(f"Copilot MCP server on stdio, as {principal.name} ({principal.role})")
    build_server(copilot, principal).run("stdio")  # stdout carries only MCP messages from here on


def _prepare_index(copilot) -> None:
    """Bring the index up to date once, with a progress bar, before any worker starts: a new
    knowledge folder can mean thousands of texts to embed, and workers would otherwise each
    start on it silently."""
    with _progress_bar() as progress:
        task = progress.add_task("indexing the knowledge", total=None)
        advance = lambda n: progress.advance(task, n)  # noqa: E731
        copilot.speller
        copilot.sync_index(advance)
        progress.update(task, description="embedding the intent examples")
        copilot.indexer.embed_cached(copilot.intent_example_texts() + copilot.scope_texts(), progress=advance)


@app.command()
@handle_errors
def migrate(data_dir: DataDir = None) -> None:
    """Bring the database schema to the newest version (servers also do this at start, under a lock)."""
    from copilot import db

    settings = _settings(data_dir)
    settings.ensure_data_dir()
    db.engine_for(settings.db_url)
    console.print(f"database schema at revision {db.head_revision()} ({_redacted(settings.db_url)})")


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@app.command("pack-embeddings", hidden=True)
@handle_errors
def pack_embeddings(data_dir: DataDir = None) -> None:
    """Precompute the pack's vectors into knowledge/embeddings (for maintainers)."""
    copilot = _copilot(data_dir)
    from copilot.knowledge.catalog import vector_texts

    copilot.speller  # the domain words shape nothing embedded, but keep one code path with the server
    texts = ([t for c in copilot.pack.chunks() for t in vector_texts(c)] + copilot.intent_example_texts()
             + copilot.scope_texts())
    console.print(f"wrote {copilot.indexer.export_pack_vectors(texts)}")


# Workflows: peer cases, success plans, confirmed actions ------------------------------------------
ListOpt = Annotated[Optional[list[str]], typer.Option(help="Repeat, or separate with commas")]


def _split(values: list[str] | None) -> list[str]:
    """`--goals a,b --goals c` -> [a, b, c]; Chinese commas and 、 separate too."""
    import re

    return [v.strip() for value in values or [] for v in re.split(r"[,，、;；]", value) if v.strip()]


def _model(cls, **fields):
    try:
        return cls(**fields)
    except ValidationError as exc:
        raise typer.BadParameter("; ".join(f"--{'.'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}"
                                           for e in exc.errors())) from None


def _actor() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"


@app.command("cases")
@handle_errors
def cases_cmd(query: Annotated[Optional[str], typer.Argument(help="Free text about the prospect")] = None,
              industry: Optional[str] = None, city: Optional[str] = None, province: Optional[str] = None,
              fee: Annotated[Optional[int], typer.Option(min=0, help="Annual subscription fee, yuan")] = None,
              tier: Annotated[Optional[str], typer.Option(help="大型 | 中型 | 中小 | 小微")] = None,
              situation: ListOpt = None, products: ListOpt = None,
              k: Annotated[int, typer.Option("--k", min=1, max=20)] = 5,
              audience: Annotated[Optional[list[str]], typer.Option(help="Only cases for these audiences (default: all)")] = None,
              data_dir: DataDir = None, json_out: JsonFlag = False, server: ServerOpt = None,
              key: ServerKeyOpt = None) -> None:
    """Peer cases for a prospect: same industry, place and size first, with why and the value to expect."""
    from copilot.models import Customer
    from copilot.workflows.cases import CaseSearchRequest, CaseSearchResult, find_cases

    profile = None
    if any((industry, city, province, fee is not None, tier, situation, products)):
        profile = _model(Customer, industry=industry, city=city, province=province, annual_fee=fee, tier=tier,
                         situation=_split(situation), products=_split(products))
    request = _model(CaseSearchRequest, query=query, profile=profile, k=k)
    if server:
        if audience:
            raise typer.BadParameter("a server decides what your key may read", param_hint="--audience")
        from copilot.remote import Remote

        found = CaseSearchResult.model_validate(
            Remote(server, key).post("/api/cases/search", request.model_dump(mode="json", exclude_none=True)))
    else:
        found = find_cases(_copilot(data_dir), request, audience or None)
    if json_out:
        _print_json(found.model_dump(mode="json"))
        return
    console.print(found.note)
    table = Table("#", "score", "case", "why it matched", "results", show_lines=True)
    for i, m in enumerate(found.matches, 1):
        results = "\n".join(f"{r.metric}: {'' if r.before is None else f'{r.before:g} → '}{r.after:g}{r.unit}"
                            for r in m.case.results)
        table.add_row(str(i), f"{m.score:.2f}" + ("" if m.good_match else "\n(备选)"),
                      f"[bold]{m.case.company}[/bold]\n{m.case.industry}·{m.case.city}·{m.case.tier}\n{m.case.id}",
                      "\n".join(m.why), results)
    console.print(table)
    if found.value_estimate:
        console.print(f"[green]价值预估：[/green]{found.value_estimate.summary}")
        console.print(f"[dim]{found.value_estimate.method}[/dim]")


@app.command("plan")
@handle_errors
def plan_cmd(name: Annotated[str, typer.Option(help="Customer name")],
             industry: Optional[str] = None, city: Optional[str] = None,
             fee: Annotated[Optional[int], typer.Option(min=0, help="Annual subscription fee, yuan")] = None,
             tier: Annotated[Optional[str], typer.Option(help="大型 | 中型 | 中小 | 小微")] = None,
             products: ListOpt = None, goals: ListOpt = None,
             person: Annotated[Optional[list[str]], typer.Option(
                 help="Key person as 'name,title,我方|客户方' (side defaults to 客户方); repeat")] = None,
             signing_date: Annotated[Optional[str], typer.Option(help="YYYY-MM-DD (default: today)")] = None,
             markdown: Annotated[bool, typer.Option("--markdown", help="Print the Markdown export as plain text")] = False,
             data_dir: DataDir = None, json_out: JsonFlag = False, server: ServerOpt = None,
             key: ServerKeyOpt = None) -> None:
    """Draft a joint success plan: outcome, first value, dated milestones, quick wins, owners, cadence."""
    from rich.markdown import Markdown

    from copilot.workflows.plans import PlanCustomer, SuccessPlan, draft_plan, render_plan

    people = []
    for given in person or []:
        parts = [p.strip() for p in given.replace("，", ",").split(",")]
        people.append({"name": parts[0], "title": parts[1] if len(parts) > 1 else "",
                       "side": parts[2] if len(parts) > 2 and parts[2] else "客户方"})
    customer = _model(PlanCustomer, name=name, industry=industry, city=city, annual_fee=fee, tier=tier,
                      products=_split(products), goals=_split(goals), key_people=people, signing_date=signing_date)
    if server:
        from copilot.remote import Remote

        drafted = Remote(server, key).post("/api/plans", {"customer": customer.model_dump(mode="json")})
        plan, text = SuccessPlan.model_validate(drafted["plan"]), str(drafted["markdown"])
    else:
        copilot = _copilot(data_dir)
        plan = draft_plan(copilot, customer)
        text = render_plan(copilot.prompts, plan)
    if json_out:
        _print_json({"plan": plan.model_dump(mode="json"), "markdown": text})
    elif markdown:
        sys.stdout.write(text + "\n")
    else:
        console.print(Markdown(text))


actions_app = typer.Typer(help="Proposed actions: list them, confirm or reject, retry failed ones.",
                          no_args_is_help=True)
app.add_typer(actions_app, name="actions")
AsRole = Annotated[Optional[str], typer.Option("--as-role", help="Role you confirm as (default: your own role)")]
ID_HELP = "The id from `actions list`: the full id or its first characters"


def _print_action(action, json_out: bool) -> None:
    if json_out:
        _print_json(action.model_dump(mode="json"))
        return
    console.print(f"{action.id}  [bold]{action.status}[/bold]  {action.type}  {action.summary}")
    if action.error:
        console.print(f"[red]error (attempt {action.attempts}):[/red] {action.error}")
    if action.result:
        console.print(f"[dim]result: {json.dumps(action.result, ensure_ascii=False)}[/dim]")


@actions_app.command("list")
@handle_errors
def actions_list(status: Annotated[Optional[str], typer.Option(
                     help="proposed | approved | rejected | executing | executed | failed")] = None,
                 limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
                 data_dir: DataDir = None, json_out: JsonFlag = False, server: ServerOpt = None,
                 key: ServerKeyOpt = None) -> None:
    """Stored actions, newest first; the id column is what `actions confirm` takes (--json: full ids).
    With --server: the actions that key may confirm or has proposed there."""
    from rich.table import Column

    from copilot.models import ActionRecord

    if server:
        from copilot.remote import Remote

        listed = Remote(server, key).get("/api/actions", {"status": status, "limit": limit})
        records = [ActionRecord.model_validate(r) for r in listed]
    else:
        records = _copilot(data_dir).action_runner.records(status=status, limit=limit)
    if json_out:
        _print_json([r.model_dump(mode="json") for r in records])
        return
    if not records:
        console.print("没有符合条件的操作 (no actions)")
        return
    short = _short_ids([r.id for r in records])
    table = Table(Column("id", no_wrap=True), "status", "type", "summary", "proposed by", "decided by", "created")
    for r in records:
        table.add_row(short[r.id], r.status, r.type, r.summary, r.proposed_by, r.decided_by or "",
                      f"{r.created_at:%Y-%m-%d %H:%M}")
    console.print(table)
    console.print("[dim]确认或拒绝：copilot actions confirm <id> --approve | --reject（id 写前几位即可）[/dim]")


def _short_ids(ids: list[str], minimum: int = 8) -> dict[str, str]:
    """Each id cut to its first `minimum` characters, or more where listed ids share that start."""
    import os.path

    ordered = sorted(set(ids))
    short = {}
    for i, full in enumerate(ordered):
        neighbours = ordered[max(i - 1, 0):i] + ordered[i + 1:i + 2]
        shared = max((len(os.path.commonprefix([full, n])) for n in neighbours), default=0)
        short[full] = full[:max(minimum, shared + 1)]
    return short


@actions_app.command("show")
@handle_errors
def actions_show(action_id: Annotated[str, typer.Argument(help=ID_HELP)], data_dir: DataDir = None,
                 json_out: JsonFlag = False, server: ServerOpt = None, key: ServerKeyOpt = None) -> None:
    """One action and its audit history."""
    from copilot.models import ActionDetail

    if server:
        from copilot.remote import Remote

        remote = Remote(server, key)
        detail = ActionDetail.model_validate(remote.get(f"/api/actions/{remote.action_id(action_id)}"))
    else:
        copilot = _copilot(data_dir)
        detail = copilot.action_runner.detail(copilot.actions.resolve_id(action_id))
    _print_action(detail, json_out)
    if not json_out:
        for entry in detail.history:
            console.print(f"[dim]{entry.at:%Y-%m-%d %H:%M:%S}  {entry.event:<9} {entry.actor}[/dim]")


KeyOpt = Annotated[Optional[str], typer.Option("--key", envvar="COPILOT_KEY", show_default=False,
                                               help="Your key (from `copilot users add`); needed once people are set up")]


def _decider(copilot, key: str | None, as_role: str | None) -> tuple[str, str]:
    """Who confirms from the command line, and in which role: the person whose key is given.
    Without users or service keys (one person on their own machine) the local user is admin."""
    from copilot.api.deps import keys_required, principal_for

    if key:
        principal = principal_for(copilot, key)
        if principal is None:
            raise CopilotError("Unknown or disabled key: ask an admin for a new one (copilot users key NAME)")
        role = as_role or principal.role
        principal.require_role(role)
        return principal.name, role
    if keys_required(copilot):
        raise CopilotError("People are set up on this copilot: say who you are with --key (or COPILOT_KEY)")
    return _actor(), as_role or "admin"


@actions_app.command("confirm")
@handle_errors
def actions_confirm(action_id: Annotated[str, typer.Argument(help=ID_HELP)],
                    approve: Annotated[Optional[bool], typer.Option("--approve/--reject", help="The decision")] = None,
                    comment: Optional[str] = None, key: KeyOpt = None, as_role: AsRole = None,
                    data_dir: DataDir = None, json_out: JsonFlag = False, server: ServerOpt = None) -> None:
    """Approve (and execute) or reject a proposed action, as the person whose key is given."""
    from copilot.models import ActionDetail, Decision

    if approve is None:
        raise typer.BadParameter("say --approve or --reject")
    decision = Decision(decision="approve" if approve else "reject", comment=comment)
    if server:
        if as_role:
            raise typer.BadParameter("on a server you confirm in your key's own role", param_hint="--as-role")
        from copilot.remote import Remote

        remote = Remote(server, key)
        path = f"/api/actions/{remote.action_id(action_id)}/confirm"
        _print_action(ActionDetail.model_validate(remote.post(path, decision.model_dump(mode="json"))), json_out)
        return
    copilot = _copilot(data_dir)
    actor, role = _decider(copilot, key, as_role)
    _print_action(copilot.action_runner.confirm(copilot.actions.resolve_id(action_id), decision, actor, role), json_out)


@actions_app.command("retry")
@handle_errors
def actions_retry(action_id: Annotated[str, typer.Argument(help=ID_HELP)], key: KeyOpt = None,
                  as_role: AsRole = None, data_dir: DataDir = None, json_out: JsonFlag = False,
                  server: ServerOpt = None) -> None:
    """Run an approved action again after a failure or an interrupted run."""
    if server:
        if as_role:
            raise typer.BadParameter("on a server you retry in your key's own role", param_hint="--as-role")
        from copilot.models import ActionDetail
        from copilot.remote import Remote

        remote = Remote(server, key)
        _print_action(ActionDetail.model_validate(remote.post(f"/api/actions/{remote.action_id(action_id)}/retry", {})),
                      json_out)
        return
    copilot = _copilot(data_dir)
    actor, role = _decider(copilot, key, as_role)
    _print_action(copilot.action_runner.retry(copilot.actions.resolve_id(action_id), actor, role), json_out)


# People ------------------------------------------------------------------------------------------
users_app = typer.Typer(help="People: add them (each gets a key, shown once), list, disable, new key.",
                        no_args_is_help=True)
app.add_typer(users_app, name="users")


@users_app.command("add")
@handle_errors
def users_add(name: Annotated[str, typer.Argument(help="The person's name, as records will show it")],
              role: Annotated[str, typer.Option("--role", help="sales | csm | support | knowledge | admin")],
              audience: Annotated[Optional[list[str]], typer.Option(
                  help="Knowledge they may read: public, internal (default: support public only, others both)")] = None,
              email: Annotated[Optional[str], typer.Option(help="Matches their single sign-on account")] = None,
              no_key: Annotated[bool, typer.Option("--no-key", help="Single sign-on only: no key")] = False,
              data_dir: DataDir = None, json_out: JsonFlag = False, server: ServerOpt = None,
              key: ServerKeyOpt = None) -> None:
    """Add a person; their key is printed once and stored only as a hash. With --server: on that
    server, with an admin's key."""
    if server:
        from copilot.remote import Remote

        created = Remote(server, key).post("/api/users", {"name": name, "role": role, "email": email,
                                                           "audiences": _split(audience) or None, "key": not no_key})
        user, new_key = created["user"], created["key"]
    else:
        added, new_key = _copilot(data_dir).users.add(name, role, _actor(), audiences=_split(audience) or None,
                                                      email=email, with_key=not no_key)
        user = added.model_dump(mode="json")
    if json_out:
        _print_json({**user, "key": new_key})
        return
    console.print(f"added {user['name']} ({user['role']}; reads {', '.join(user['audiences'])})")
    if new_key:
        console.print("key (shown only now, keep it safe):")
        sys.stdout.write(new_key + "\n")


@users_app.command("list")
@handle_errors
def users_list(data_dir: DataDir = None, json_out: JsonFlag = False, server: ServerOpt = None,
               key: ServerKeyOpt = None) -> None:
    """Everyone, with role, audiences and whether they are active. With --server: an admin's key."""
    if server:
        from copilot.remote import Remote

        users = Remote(server, key).get("/api/users")
    else:
        users = [u.model_dump(mode="json") for u in _copilot(data_dir).users.list()]
    if json_out:
        _print_json(users)
        return
    if not users:
        console.print("no users yet: add one with `copilot users add NAME --role admin`")
        return
    table = Table("name", "role", "reads", "email", "sign-in", "status", "added")
    for u in users:
        sign_in = " + ".join(x for x, on in (("key", u["has_key"]), ("sso", u["single_sign_on"])) if on) or "-"
        status = f"disabled {u['disabled_at'][:10]}" if u["disabled_at"] else "active"
        table.add_row(u["name"], u["role"], ", ".join(u["audiences"]), u["email"] or "", sign_in, status,
                      u["created_at"][:10])
    console.print(table)


@users_app.command("disable")
@handle_errors
def users_disable(name: Annotated[str, typer.Argument(help="Name or id")], data_dir: DataDir = None,
                  server: ServerOpt = None, key: ServerKeyOpt = None) -> None:
    """Stop a person's key and sessions at once (their records stay)."""
    console.print(f"disabled {_set_active(name, False, data_dir, server, key)}")


@users_app.command("enable")
@handle_errors
def users_enable(name: Annotated[str, typer.Argument(help="Name or id")], data_dir: DataDir = None,
                 server: ServerOpt = None, key: ServerKeyOpt = None) -> None:
    """Let a disabled person in again (with their old key, unless it was replaced)."""
    console.print(f"enabled {_set_active(name, True, data_dir, server, key)}")


def _set_active(name: str, active: bool, data_dir: Path | None, server: str | None, key: str | None) -> str:
    if server:
        from copilot.remote import Remote, user_path

        return Remote(server, key).post(user_path(name, "enable" if active else "disable"), {})["name"]
    return _copilot(data_dir).users.set_active(name, active, _actor()).name


@users_app.command("key")
@handle_errors
def users_key(name: Annotated[str, typer.Argument(help="Name or id")], data_dir: DataDir = None,
              server: ServerOpt = None, key: ServerKeyOpt = None) -> None:
    """A new key for a person (the old one stops working); printed once."""
    if server:
        from copilot.remote import Remote, user_path

        new_key = Remote(server, key).post(user_path(name, "key"), {})["key"]
    else:
        new_key = _copilot(data_dir).users.rotate_key(name, _actor())
    console.print("new key (shown only now, keep it safe):")
    sys.stdout.write(new_key + "\n")


def main() -> None:
    """The `copilot` executable."""
    try:
        app()
        code = 0
    except SystemExit as exc:
        if exc.code is not None and not isinstance(exc.code, int):
            raise  # a message to print: Python's own exit does that
        code = exc.code or 0
    _exit_without_teardown(code)


def _exit_without_teardown(code: int) -> None:
    """Exit once output is flushed and exit handlers have run, skipping the interpreter's freeing of
    every module and object: ~0.2 s, a fifth of a `copilot search` (Step 6: start-up). Only when
    nothing else runs: a thread still working (an action being executed) is waited for as usual."""
    if any(t is not threading.main_thread() and not t.daemon for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()  # logging's flush, temporary files, ... as at a normal exit
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`copilot search ... | head`)
            pass
    os._exit(code)


if __name__ == "__main__":
    main()
