fn main() {
    muen_buildsupport::bare_metal_bins("link.ld");
}
