"""`flashml backup DEST` and `flashml restore SRC`: a data directory (and its store) into a backup folder and back.

Both work in-process on the data directory and its store, like `users` and `keys`; `backup` while the server
runs. Progress goes to standard error, the summary to standard output.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from flashml.cli.main import main
from flashml.cli.options import data_options, resolve


def _progress(message: str) -> None:
    click.echo(message, err=True)


@main.command("backup")
@click.argument("dest", type=click.Path(path_type=Path))
@data_options
def backup(dest: Path, config: Path | None, data_dir: Path | None) -> None:
    """Back up the data directory into the new folder DEST, while the server runs.

    A consistent snapshot of the database (SQLite's online backup), then the artifacts it names: copied from a
    local store; for an S3 store, listed with their sizes and sha256 (they stay in the bucket). DEST appears only
    when the backup is whole. docs/backup.md says what is kept and how to restore it.
    """
    from flashml.errors import FlashMLError
    from flashml.ops.backup import BackupError
    from flashml.ops.backup import backup as take

    settings = resolve(config, {"data_dir": data_dir})
    _progress(f"Data directory: {settings.data_dir}")
    try:
        manifest = take(settings, dest, _progress)
    except (BackupError, FlashMLError) as exc:
        raise click.ClickException(getattr(exc, "message", None) or str(exc)) from None
    size = manifest.database.size + sum(o.size for o in manifest.objects) + sum(f.size for f in manifest.files)
    kept = "copied" if manifest.objects_copied else "listed (they stay in the bucket)"
    click.echo(f"Backup written to {dest}: the database ({_counts(manifest.counts)}), {len(manifest.objects)} "
               f"object(s) {kept}, {len(manifest.files)} prediction log segment(s); {size / 1e6:.1f} MB in all.")


@main.command("restore")
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@data_options
def restore(src: Path, config: Path | None, data_dir: Path | None) -> None:
    """Restore the backup folder SRC into an empty data directory (refused if it holds anything).

    Every checksum is checked first (the backup's files, and an S3 backup's objects in the bucket that the
    settings name); a problem stops the restore with nothing written. Then start `flashml serve` on it.
    """
    from flashml.errors import FlashMLError
    from flashml.ops.backup_manifest import ManifestError
    from flashml.ops.restore import RestoreError
    from flashml.ops.restore import restore as bring_back

    settings = resolve(config, {"data_dir": data_dir})
    _progress(f"Data directory: {settings.data_dir}")
    try:
        done = bring_back(src, settings, _progress)
    except (ManifestError, RestoreError, FlashMLError) as exc:
        raise click.ClickException(getattr(exc, "message", None) or str(exc)) from None
    taken = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(done.manifest.created_at))
    click.echo(f"Restored the backup of {taken} into {done.data_dir}: the database "
               f"({_counts(done.manifest.counts)}), {done.objects} object(s) checked. Start the server on it: "
               f"flashml serve --data-dir {done.data_dir}")


def _counts(counts: dict[str, int]) -> str:
    names = {"users": "users", "api_keys": "keys", "models": "models", "versions": "versions", "jobs": "jobs"}
    return ", ".join(f"{counts.get(table, 0)} {word}" for table, word in names.items())
