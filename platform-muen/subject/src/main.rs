//! `unipi.muen`: the unipi-rs web server as a Muen native subject.

#![no_std]
#![no_main]

use muen_subject::Runtime;

muen_subject::subject_main!(main);

fn main(_rt: &mut Runtime) -> i32 {
    log::info!("unipi: nothing to serve yet");
    0
}
