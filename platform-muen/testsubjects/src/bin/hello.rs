//! Logs a greeting and exits cleanly through the exit event.
#![no_std]
#![no_main]

muen_subject::subject_main!(main);

fn main(rt: &mut muen_subject::Runtime) -> i32 {
    log::info!("hello from subject '{}'", rt.sinfo.name());
    0
}
