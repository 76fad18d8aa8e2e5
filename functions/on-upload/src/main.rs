//! The on-upload Lambda function; everything is in `mediaflow-function`.

fn main() -> anyhow::Result<()> {
    Ok(mediaflow_function::main(
        mediaflow_function::Function::OnUpload,
    )?)
}
