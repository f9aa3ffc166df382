"""The measuring commands of ``swarmedge``: profile, compare, visualize, arm-setup, arm-check.

Registered on the top-level group in ``cli.py``; thin layers over the library, imports lazy.
"""

import json
from pathlib import Path

import click

from swarmedge.cli_errors import Command
from swarmedge.cli_options import (
    DATA_DIR_HELP,
    DATA_HELP,
    PRECISIONS,
    THREADS_HELP,
    OutputFile,
    check_remote,
    choice_list,
    int_list,
    note,
)
from swarmedge.limits import MAX_BATCH, MAX_REPEAT, MAX_WARMUP
from swarmedge.progress import QUIET_HELP, Stages


@click.command(cls=Command)
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--precision", callback=choice_list(PRECISIONS),
              help="Comma-separated: int8, fp32 [default: every precision the bundle has].")
@click.option("--threads", default="1", show_default=True, callback=int_list,
              help=f"Comma-separated onnxruntime thread counts ({THREADS_HELP}).")
@click.option("--batch", default="1", show_default=True, callback=int_list,
              help=f"Comma-separated batch sizes, each 1..{MAX_BATCH}.")
@click.option("--seq-len", callback=int_list,
              help="Text models: tokens per input, up to the bundle's seq_len [default: seq_len].")
@click.option("--boids", callback=int_list,
              help="Boid models: boids per input, 1..784 (one per pixel) [default: 150].")
@click.option("--warmup", type=click.IntRange(0, MAX_WARMUP), default=10, show_default=True,
              help="Untimed runs before timing each configuration (caches, allocations).")
@click.option("--repeat", type=click.IntRange(1, MAX_REPEAT), default=100, show_default=True,
              help="Timed runs per configuration (the latency percentiles come from these).")
@click.option("--per-op", is_flag=True, help="Add onnxruntime's per-operator times, fp32 and int8 side by side.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("-o", "--output", type=OutputFile("report.json"), help="Also write the JSON report here.")
@click.option("--remote", metavar="[USER@]HOST[:DIR]", callback=check_remote,
              help="Profile on a device over ssh (the bundle is copied there).")
@click.option("-q", "--quiet", is_flag=True, help=QUIET_HELP)
def profile(bundle, precision, threads, batch, seq_len, boids, warmup, repeat, per_op, as_json, output, remote,
            quiet):
    """Measure latency, throughput and memory of BUNDLE on this machine (no torch needed).

    \b
    Examples:
      swarmedge profile small.bundle
      swarmedge profile small.bundle --threads 1,4 --batch 1,8,32 --per-op
      swarmedge profile digits.bundle --boids 50,150,400 --json -o pi5.json
      swarmedge profile small.bundle --remote pi@raspberrypi.local --json -o pi5.json
    """
    from swarmedge.atomic import write_bytes
    from swarmedge.runtimes.profile import profile_bundle
    from swarmedge.summary import profile_table

    if seq_len and boids:
        raise click.UsageError("give --seq-len (text models) or --boids (boid models), not both")
    if output:  # before the measurement, not after it
        from swarmedge.output_paths import check_output_file

        check_output_file(output)
    if remote:
        from swarmedge.remote import remote_profile

        def csv(values):
            return ",".join(map(str, values))

        args = ["--threads", csv(threads), "--batch", csv(batch), "--warmup", str(warmup), "--repeat", str(repeat)]
        args += ["--precision", csv(precision)] if precision else []
        args += (["--seq-len", csv(seq_len)] if seq_len else []) + (["--boids", csv(boids)] if boids else [])
        report = remote_profile(remote, bundle, args + (["--per-op"] if per_op else []))
    else:
        notices: list[str] = []
        with Stages("profile", quiet=quiet, unit="config") as on_step:
            report = profile_bundle(bundle, precision, threads, batch, seq_len or boids or None,
                                    warmup=warmup, repeat=repeat, per_op=per_op, on_step=on_step,
                                    length_flag="--seq-len" if seq_len else "--boids" if boids else None,
                                    notices=notices)
        for notice in notices:
            note(notice)
    text = json.dumps(report, indent=2)
    if output:
        write_bytes(output, (text + "\n").encode())
    click.echo(text if as_json else profile_table(report))


@click.command("compare", cls=Command)
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--data", "data", required=True, help=DATA_HELP)
@click.option("--data-dir", type=click.Path(path_type=Path), help=DATA_DIR_HELP)
@click.option("--limit", type=click.IntRange(min=1), help="Compare on a seeded sample of this many inputs.")
@click.option("--latency-inputs", type=click.IntRange(min=1), default=100, show_default=True,
              help="Test inputs timed one by one for the latency columns.")
@click.option("--profile", "profiles", multiple=True, type=click.Path(path_type=Path),
              help="A `swarmedge profile --json` report from another device, added as a column (repeatable).")
@click.option("--arm", "arm_checks", multiple=True, type=click.Path(path_type=Path),
              help="A `swarmedge arm-check --json` report, added as a table (repeatable).")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("compare-report"), show_default=True,
              help="Directory for report.md, report.json and report.html.")
@click.option("-q", "--quiet", is_flag=True, help=QUIET_HELP)
def compare_cmd(model, bundle, data, data_dir, limit, latency_inputs, profiles, arm_checks, output, quiet):
    """PyTorch fp32 vs ONNX fp32 vs ONNX int8 on a test set: accuracy, agreement, errors, latency, size.

    \b
    Examples:
      swarmedge compare digits.pt digits.bundle --data mnist
      swarmedge compare small.pt small.bundle --data imdb --limit 2000 -o report/
      swarmedge compare small.pt small.bundle --data imdb --profile pi5.json
    """
    from swarmedge.errors import require_extra

    require_extra("torch", "export")
    require_extra("matplotlib", "viz")
    from swarmedge.compare import compare
    from swarmedge.reports import check_report_folder, markdown, write_reports

    check_report_folder(output)  # before the evaluation, not after it

    with Stages("compare", quiet=quiet) as on_step:
        result = compare(model, bundle, data, data_dir=data_dir, limit=limit, latency_inputs=latency_inputs,
                         profiles=profiles, arm_checks=arm_checks, on_step=on_step)
    paths = write_reports(result, output)
    for line in result["notes"]:
        note(line)
    click.echo(markdown(result))
    click.echo("wrote " + ", ".join(str(p) for p in paths.values()))


@click.command(cls=Command)
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--image", type=click.Path(path_type=Path), help="A digit (PNG/JPEG/npy) to follow through the blocks.")
@click.option("--fields", is_flag=True, help="Draw the first block's vector fields instead (needs the .pt).")
@click.option("--fps", type=click.IntRange(1, 30), default=3, show_default=True,
              help="Frames (swarm steps) per second of the GIF.")
@click.option("-o", "--output", required=True, type=OutputFile("swarm.gif"), help=".gif/.mp4, or .png for --fields")
def visualize(model, image, fields, fps, output):
    """Pictures of the swarm: boids moving block by block (fp32 and int8 side by side), or vector fields.

    \b
    Examples:
      swarmedge visualize digits.bundle --image five.png -o swarm.gif
      swarmedge visualize digits.pt --image five.png -o swarm.mp4
      swarmedge visualize digits.pt --fields -o fields.png
    """
    from swarmedge.errors import require_extra

    require_extra("matplotlib", "viz")
    from swarmedge import visualize as viz

    if fields:
        click.echo(f"wrote {viz.vector_fields(model, output)}")
        return
    if image is None:
        raise click.UsageError("give --image DIGIT (or --fields)")
    from swarmedge.runtimes.images import load_image

    notices: list[str] = []
    digit = load_image(image, notices)
    for notice in notices:
        click.echo(f"swarmedge: note: {notice}", err=True)
    click.echo(f"wrote {viz.swarm_animation(model, digit, output, fps=fps)}")


@click.command("arm-setup", cls=Command)
@click.option("--rebuild", is_flag=True, help="Build the sysroot again even if the cache has one.")
@click.option("-q", "--quiet", is_flag=True, help=QUIET_HELP)
def arm_setup(rebuild, quiet):
    """Build (once) the cached aarch64 sysroot that arm-check runs bundles in.

    \b
    Needs: sudo apt-get install qemu-user-static mmdebstrap
    Examples:
      swarmedge arm-setup
      SWARMEDGE_CACHE=/data/cache swarmedge arm-setup --rebuild
    """
    from swarmedge.arm.sysroot import ensure_sysroot

    with Stages("arm-setup", quiet=quiet) as on_step:
        root = ensure_sysroot(rebuild=rebuild, on_step=on_step)
    click.echo(f"aarch64 sysroot ready: {root}")


def _arm_cpus():
    from swarmedge.arm.sysroot import CPUS  # lazily: it reads the cache settings

    return list(CPUS)


@click.command("arm-check", cls=Command)
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--cpu", default="cortex-a72,cortex-a76", show_default=True, callback=choice_list(_arm_cpus),
              help="Emulated CPUs: cortex-a72 = Raspberry Pi 4, cortex-a76 = Raspberry Pi 5.")
@click.option("--precision", default="int8", show_default=True, callback=choice_list(PRECISIONS),
              help="Comma-separated: int8, fp32.")
@click.option("--data", help=DATA_HELP.rstrip(".") + " [default: the model's data set].")
@click.option("--data-dir", type=click.Path(path_type=Path), help=DATA_DIR_HELP)
@click.option("--limit", type=click.IntRange(min=0),
              help="Seeded sample size [default: 300 digits, 200 reviews; 0: all].")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("-o", "--output", type=OutputFile("report.json"), help="Also write the JSON report here.")
@click.option("-q", "--quiet", is_flag=True, help=QUIET_HELP)
def arm_check_cmd(bundle, cpu, precision, data, data_dir, limit, as_json, output, quiet):
    """Run BUNDLE on emulated Raspberry Pi 4/5 CPUs (QEMU) and compare with this machine.

    \b
    Examples:
      swarmedge arm-check small.bundle
      swarmedge arm-check digits.bundle --cpu cortex-a72 --precision int8,fp32 --limit 1000
      swarmedge arm-check small.bundle --json -o arm.json     # compare --arm arm.json adds it to a report
    """
    from swarmedge.arm.check import arm_check, format_arm_report
    from swarmedge.atomic import write_bytes
    from swarmedge.output_paths import check_output_file

    if output:  # before the emulated run, not after it
        check_output_file(output)

    with Stages("arm-check", quiet=quiet) as on_step:
        report = arm_check(bundle, cpu, precision, data, data_dir, limit, on_step=on_step)
    text = json.dumps(report, indent=2)
    if output:
        write_bytes(output, (text + "\n").encode())
    click.echo(text if as_json else format_arm_report(report))
