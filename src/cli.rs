//! The command line: parses arguments, runs one command and maps its outcome to an exit
//! code. This is the output layer: data goes to stdout, logs and errors to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::error::Error;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{EnvFilter, FilterExt, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::apply::CopyOptions;
use crate::aws::Cloud;
use crate::aws::retry::{RetryPolicy, Retrying};
use crate::aws::sdk::SdkCloud;
use crate::observe::Observed;
use crate::plan::Change;
use crate::plan::Plan;
use crate::progress::CopyDisplay;
use crate::render::Format;
use crate::saved::{self, SavedPlan};
use crate::spec::{Diagnostics, Spec};
use crate::{apply, observe, plan, render, spec};

/// Exit code when the command succeeded and nothing would change.
pub const EXIT_OK: u8 = 0;
/// Exit code for any error, blocked changes included.
pub const EXIT_ERROR: u8 = 1;
/// Exit code of `plan --detailed-exitcode` when changes are pending.
pub const EXIT_CHANGES: u8 = 2;

/// Share KMS-encrypted AMIs across AWS accounts, declaratively.
#[derive(Debug, Parser)]
#[command(name = "amishare", version, about)]
struct Cli {
    /// Log more to stderr: -v for decisions, -vv for library debug logs too. RUST_LOG wins.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check spec files offline, without credentials.
    Validate {
        /// Spec files, or directories of `*.yaml` files.
        #[arg(required = true)]
        specs: Vec<PathBuf>,
    },
    /// Show the changes that would make the live state match the spec.
    Plan {
        /// Spec files, or directories of `*.yaml` files.
        #[arg(required = true)]
        specs: Vec<PathBuf>,
        /// Output format on stdout.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Also save the plan, with the spec and a fingerprint of the live state it was
        /// computed from, to this file for `amishare apply FILE`.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Exit with 2 when changes are pending, 0 when there are none.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Succeed even when some declared changes are blocked.
        #[arg(long)]
        allow_blocked: bool,
    },
    /// Make the changes in the plan, then check that the live state matches the spec.
    ///
    /// Given spec files, it plans first and asks for confirmation. Given one file saved
    /// by `plan --out`, it applies exactly that plan, without asking, and only if the live
    /// state it was computed from has not changed since.
    Apply {
        /// Spec files or directories, or one saved plan.
        #[arg(required = true, value_name = "SPEC_OR_PLAN")]
        specs: Vec<PathBuf>,
        /// Apply the changes that are not blocked even when others are.
        #[arg(long)]
        allow_blocked: bool,
        /// Apply without asking for confirmation; needed when stdin is not a terminal.
        #[arg(long)]
        auto_approve: bool,
        /// How long to wait for image copies to become available, such as `90m` or `2h`.
        #[arg(long, value_name = "DURATION", default_value = "2h")]
        copy_timeout: humantime::Duration,
        /// Image copies in flight at once per destination region.
        #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..))]
        max_copies_per_region: u16,
    },
    /// Print the JSON Schema of the spec format.
    Schema {
        /// Print the JSON Schema of `plan --format json` output instead.
        #[arg(long)]
        plan: bool,
    },
}

/// Builds the command-line definition, which tests use to check commands written
/// elsewhere, such as in the CI examples.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            // Exit 2 means "changes pending" here, so usage errors exit 1 like any error.
            let code = if err.use_stderr() {
                EXIT_ERROR
            } else {
                EXIT_OK
            };
            return ExitCode::from(code);
        }
    };
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return report(&CliError::new("cannot start the async runtime", err)),
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => ExitCode::from(code),
        Err(err) => report(&err),
    }
}

/// Prefixes of the log targets of the SDK and its HTTP stack, whose events are capped at
/// info; see `init_logging`. A prefix covers every crate and module whose path starts
/// with it, so `aws` covers `aws_config`, `aws_sigv4::http_request` and the rest.
const SDK_LOG_TARGETS: [&str; 5] = ["aws", "hyper", "h2", "rustls", "tower"];

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "amishare=debug,warn",
        _ => "debug",
    };
    let requested = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    // The SDK's own logs carry credentials: aws-config logs the access key id of assumed
    // credentials, and the orchestrator and signer dump identities, the external id and
    // canonical requests at debug and trace. A second filter caps them whatever RUST_LOG
    // requests, even for a single module, because a directive added to the EnvFilter
    // would lose to a more specific one in RUST_LOG.
    let caps = SDK_LOG_TARGETS.iter().fold(
        Targets::new().with_default(LevelFilter::TRACE),
        |targets, prefix| targets.with_target(*prefix, LevelFilter::INFO),
    );
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let output = tracing_subscriber::fmt::layer()
        .with_ansi(colour)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_filter(requested.and(caps));
    tracing_subscriber::registry().with(output).init();
}

/// An error for the user: what failed, why (the source chain) and how to fix it.
#[derive(Debug)]
struct CliError {
    message: String,
    source: Option<Box<dyn Error + Send + Sync>>,
    hint: Option<String>,
}

impl CliError {
    fn new(message: impl Into<String>, source: impl Error + Send + Sync + 'static) -> Self {
        CliError {
            message: message.into(),
            source: Some(Box::new(source)),
            hint: None,
        }
    }

    fn plain(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            source: None,
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

fn report(err: &CliError) -> ExitCode {
    let mut stderr = anstream::stderr();
    let _ = writeln!(stderr, "error: {}", err.message);
    let mut source: Option<&(dyn Error + 'static)> =
        err.source.as_deref().map(|e| e as &(dyn Error + 'static));
    while let Some(cause) = source {
        let _ = writeln!(stderr, "  caused by: {cause}");
        source = cause.source();
    }
    if let Some(hint) = &err.hint {
        let _ = writeln!(stderr, "  hint: {hint}");
    }
    ExitCode::from(EXIT_ERROR)
}

async fn run(command: Command) -> Result<u8, CliError> {
    match command {
        Command::Validate { specs } => {
            let spec = load(&specs)?;
            println!(
                "valid: {} account{}, {} key{}, {} image group{}",
                spec.accounts.len(),
                plural(spec.accounts.len()),
                spec.keys.len(),
                plural(spec.keys.len()),
                spec.images.len(),
                plural(spec.images.len()),
            );
            Ok(EXIT_OK)
        }
        Command::Schema { plan: false } => {
            print!("{}", spec::json_schema());
            Ok(EXIT_OK)
        }
        Command::Schema { plan: true } => {
            print!("{}", render::plan_schema());
            Ok(EXIT_OK)
        }
        Command::Plan {
            specs,
            format,
            out,
            detailed_exitcode,
            allow_blocked,
        } => {
            let options = PlanOptions {
                format,
                out,
                detailed_exitcode,
                allow_blocked,
            };
            run_plan(&specs, &options).await
        }
        Command::Apply {
            specs,
            allow_blocked,
            auto_approve,
            copy_timeout,
            max_copies_per_region,
        } => {
            let copies = CopyOptions {
                timeout: copy_timeout.into(),
                max_in_flight_per_region: usize::from(max_copies_per_region),
                ..CopyOptions::default()
            };
            match saved_plan(&specs)? {
                Some((path, saved)) => apply_saved(&path, &saved, allow_blocked, &copies).await,
                None => apply_specs(&specs, allow_blocked, auto_approve, &copies).await,
            }
        }
    }
}

struct PlanOptions {
    format: Format,
    out: Option<PathBuf>,
    detailed_exitcode: bool,
    allow_blocked: bool,
}

async fn run_plan(specs: &[PathBuf], options: &PlanOptions) -> Result<u8, CliError> {
    let spec = load(specs)?;
    let sources = match &options.out {
        Some(_) => saved::read_sources(specs)
            .map_err(|err| CliError::new("cannot read the spec files to save", err))?,
        None => Vec::new(),
    };
    let cloud = connect(&spec).await?;
    let (observed, plan) = make_plan(&cloud, &spec).await?;
    write_output(
        options.format,
        &render::render(options.format, &plan, &spec),
    );
    check_blocked(&plan, options.allow_blocked)?;
    let code = if options.detailed_exitcode && !plan.is_empty() {
        EXIT_CHANGES
    } else {
        EXIT_OK
    };
    if let Some(path) = &options.out {
        SavedPlan::new(sources, &spec, &observed, plan)
            .write(path)
            .map_err(|err| CliError::new("cannot save the plan", err))?;
        eprintln!(
            "Saved the plan to `{}`; apply it with `amishare apply {}`.",
            path.display(),
            path.display()
        );
    }
    Ok(code)
}

/// Finds the saved plan among `paths`, when there is one. A saved plan must be the only
/// path.
fn saved_plan(paths: &[PathBuf]) -> Result<Option<(PathBuf, SavedPlan)>, CliError> {
    let mut found = None;
    for path in paths {
        let saved = SavedPlan::read(path).map_err(|err| {
            CliError::new("cannot read the saved plan", err)
                .hint("save the plan again with `amishare plan --out FILE` using this amishare")
        })?;
        if let Some(saved) = saved {
            found = Some((path.clone(), saved));
        }
    }
    match found {
        Some((path, _)) if paths.len() > 1 => Err(CliError::plain(format!(
            "`{}` is a saved plan, which must be the only argument of apply",
            path.display()
        ))
        .hint("apply the saved plan alone, or give only spec files")),
        found => Ok(found),
    }
}

async fn apply_specs(
    specs: &[PathBuf],
    allow_blocked: bool,
    auto_approve: bool,
    copies: &CopyOptions,
) -> Result<u8, CliError> {
    let spec = load(specs)?;
    if !auto_approve && !std::io::stdin().is_terminal() {
        return Err(CliError::plain(
            "apply asks for confirmation, but stdin is not a terminal; nothing was read or changed in AWS",
        )
        .hint("pass --auto-approve to apply without asking, or apply a plan saved with `amishare plan --out FILE`"));
    }
    let cloud = connect(&spec).await?;
    let (_, plan) = make_plan(&cloud, &spec).await?;
    write_stdout(&render::render_text(&plan, &spec));
    check_blocked(&plan, allow_blocked)?;
    if plan.is_empty() {
        return Ok(EXIT_OK);
    }
    if !auto_approve && !confirm()? {
        return Err(CliError::plain("apply cancelled; nothing was changed"));
    }
    execute(&cloud, &spec, &plan, copies).await
}

/// Asks on the terminal whether to apply; only `y` or `yes` agrees.
fn confirm() -> Result<bool, CliError> {
    eprint!("Apply these changes? [y/N] ");
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|err| CliError::new("cannot read the confirmation from stdin", err))?;
    Ok(is_yes(&answer))
}

fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

async fn apply_saved(
    path: &Path,
    saved: &SavedPlan,
    allow_blocked: bool,
    copies: &CopyOptions,
) -> Result<u8, CliError> {
    let spec = saved
        .spec()
        .map_err(|err| CliError::new("cannot use the saved plan", err))?;
    let cloud = connect(&spec).await?;
    let observed = read_state(&cloud, &spec).await?;
    let stale = saved.stale(&spec, &observed);
    if !stale.is_empty() {
        let mut stderr = anstream::stderr();
        for resource in &stale {
            let _ = writeln!(stderr, "error: {resource} changed since the plan was saved");
        }
        return Err(CliError::plain(format!(
            "{} resource{} changed since `{}` was saved; nothing was changed",
            stale.len(),
            plural(stale.len()),
            path.display()
        ))
        .hint("run `amishare plan --out FILE` again, review the new plan, and apply that file"));
    }
    check_saved_sources(path, saved)?;
    // The changes and findings are checked against a plan made here, so an edited file
    // can neither add a change nor hide a blocked one.
    let fresh = plan::plan(&spec, &observed);
    if !saved.follows_from(&fresh) {
        return Err(CliError::plain(format!(
            "the changes in `{}` are not the ones its specs give for the live state; nothing was changed",
            path.display()
        ))
        .hint("the file was edited after it was saved; run `amishare plan --out FILE` again and apply that file"));
    }
    write_stdout(&render::render_text(&fresh, &spec));
    check_blocked(&fresh, allow_blocked)?;
    if saved.plan.is_empty() {
        return Ok(EXIT_OK);
    }
    execute(&cloud, &spec, &saved.plan, copies).await
}

/// Rejects a saved plan whose spec files, where they exist here, differ from the copies
/// saved in it: the file was edited, or the specs changed since the plan was reviewed.
fn check_saved_sources(path: &Path, saved: &SavedPlan) -> Result<(), CliError> {
    let (differ, absent) = saved.check_sources();
    let mut stderr = anstream::stderr();
    for spec in &absent {
        let _ = writeln!(
            stderr,
            "note: `{spec}` is not in the current directory, so the copy saved in `{}` is not checked against it",
            path.display()
        );
    }
    if differ.is_empty() {
        return Ok(());
    }
    for spec in &differ {
        let _ = writeln!(
            stderr,
            "error: `{spec}` differs from the copy saved in `{}`",
            path.display()
        );
    }
    Err(CliError::plain(format!(
        "{} spec file{} changed since `{}` was saved; nothing was changed",
        differ.len(),
        plural(differ.len()),
        path.display()
    ))
    .hint(
        "run `amishare plan --out FILE` again on the current specs, review it, and apply that file",
    ))
}

/// Applies `plan`, prints each step, then plans again to check that nothing is left.
async fn execute(
    cloud: &dyn Cloud,
    spec: &Spec,
    plan: &Plan,
    copies: &CopyOptions,
) -> Result<u8, CliError> {
    let count = plan
        .changes
        .iter()
        .filter(|c| matches!(c, Change::Copy(_)))
        .count();
    let display = CopyDisplay::new(count);
    let applied = apply::apply_all(cloud, spec, plan, copies, &display).await;
    display.finish();
    let (report, _) = applied
        .map_err(|err| CliError::new("cannot read the live state after making copies", err))?;
    print_report(&report);
    let (_, after) = make_plan(cloud, spec).await?;
    let blocked = after.blocked().count();
    if after.is_empty() && report.succeeded() {
        if blocked == 0 {
            println!("Converged: the live state matches the spec.");
        } else {
            println!("Done: nothing else can change until {blocked} blocked change(s) are fixed.");
        }
        return Ok(EXIT_OK);
    }
    println!("Not converged: {}", render::summary(&after));
    // What blocks now, such as a copy that failed, is what the user must fix first.
    for finding in after.blocked() {
        println!(
            "blocked: {}: {} [{}]",
            finding.resource, finding.message, finding.code
        );
        if let Some(hint) = &finding.hint {
            println!("  hint: {hint}");
        }
    }
    let message = if report.succeeded() {
        format!(
            "the live state still differs from the spec after apply: {} change(s) remain",
            after.changes.len()
        )
    } else {
        format!(
            "apply finished with {} failed and {} skipped step(s)",
            report.failed.len(),
            report.skipped.len()
        )
    };
    Err(CliError::plain(message).hint("run plan to see what remains; fix any cause shown above and run apply again, which does not repeat completed steps"))
}

/// Writes the plan: text through the styling layer, Markdown and JSON byte for byte.
fn write_output(format: Format, text: &str) {
    match format {
        Format::Text => write_stdout(text),
        Format::Markdown | Format::Json => {
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
        }
    }
}

fn write_stdout(text: &str) {
    let mut stdout = anstream::stdout();
    let _ = stdout.write_all(text.as_bytes());
}

fn load(paths: &[PathBuf]) -> Result<Spec, CliError> {
    if let Some(path) = paths.iter().find(|p| saved::is_saved_plan(p)) {
        return Err(
            CliError::plain(format!("`{}` is a saved plan, not a spec", path.display()))
                .hint(format!("apply it with `amishare apply {}`", path.display())),
        );
    }
    spec::load(paths).map_err(|Diagnostics(problems)| {
        let mut stderr = anstream::stderr();
        for problem in &problems {
            let _ = writeln!(stderr, "error: {problem}");
        }
        let count = problems.len();
        CliError::plain(format!(
            "{count} problem{} in the spec; nothing was read or changed in AWS",
            if count == 1 { "" } else { "s" }
        ))
    })
}

async fn connect(spec: &Spec) -> Result<Retrying<SdkCloud>, CliError> {
    let cloud = SdkCloud::connect(spec).await.map_err(|err| {
        CliError::new("cannot connect to AWS", err).hint(
            "check the credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID) and each account's `role_arn`",
        )
    })?;
    Ok(Retrying::new(cloud, RetryPolicy::default()))
}

async fn read_state(cloud: &dyn Cloud, spec: &Spec) -> Result<Observed, CliError> {
    observe::observe(cloud, spec).await.map_err(|err| {
        // No error code means that no AWS response came: the request or the credentials
        // behind it failed first.
        let unreached = err.code.is_none();
        let error = CliError::new("cannot read the live state", err);
        if unreached {
            error.hint("no response came from AWS: check network access to the endpoint (AWS_ENDPOINT_URL, when set), the credentials, and that each account's `role_arn` can be assumed")
        } else {
            error
        }
    })
}

async fn make_plan(cloud: &dyn Cloud, spec: &Spec) -> Result<(Observed, Plan), CliError> {
    let observed = read_state(cloud, spec).await?;
    let plan = plan::plan(spec, &observed);
    Ok((observed, plan))
}

fn check_blocked(plan: &Plan, allow_blocked: bool) -> Result<(), CliError> {
    let blocked = plan.blocked().count();
    if blocked == 0 || allow_blocked {
        return Ok(());
    }
    Err(CliError::plain(format!(
        "{blocked} declared change{} blocked; nothing was changed",
        if blocked == 1 { " is" } else { "s are" }
    ))
    .hint("fix what each blocked finding names, or pass --allow-blocked to go on with the rest"))
}

fn print_report(report: &apply::ApplyReport) {
    for step in &report.done {
        println!("done: {step}");
    }
    for (step, err) in &report.failed {
        println!("failed: {step}: {err}");
    }
    for (step, reason) in &report.skipped {
        println!("skipped: {step}: {reason}");
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_y_or_yes_confirms() {
        for answer in ["y\n", "Y\n", "yes\n", " YES \r\n"] {
            assert!(is_yes(answer), "{answer:?}");
        }
        for answer in ["", "\n", "n\n", "no\n", "yep\n", "ja\n"] {
            assert!(!is_yes(answer), "{answer:?}");
        }
    }

    #[test]
    fn command_definition_is_consistent() {
        command().debug_assert();
    }
}
