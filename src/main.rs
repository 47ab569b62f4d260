use std::process::ExitCode;

fn main() -> ExitCode {
    amishare::cli::main()
}
