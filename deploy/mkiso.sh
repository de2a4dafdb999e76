#!/bin/sh
# Builds the bootable ISO of the minimal-kernel system, reproducibly.
#
#   deploy/mkiso.sh SYSTEM_ELF OUT_ISO
#
# SYSTEM_ELF is the packed system with an armed multiboot header
# (muen-tools pack --multiboot true, build/system-multiboot.elf).
#
# Layout of the ISO (ISO 9660 + Rock Ridge, El Torito no-emulation boot,
# hybrid MBR so it also boots when written to a USB stick):
#   /boot/system.elf          SYSTEM_ELF
#   /boot/grub/grub.cfg       deploy/grub.cfg
#   /boot/grub/eltorito.img   GRUB (i386-pc) with every module it needs built in
#
# The image is made with grub-mkimage + xorriso rather than grub-mkrescue,
# because grub-mkrescue stamps the ISO (and the GRUB core inside it) with the
# current time. All dates come from SOURCE_DATE_EPOCH (required), the volume
# id from ISO_VOLID (default UNIPI_RS), GRUB from GRUB_DIR (default
# /usr/lib/grub/i386-pc, Debian package grub-pc-bin).
set -eu

[ $# -eq 2 ] || { echo "usage: $0 SYSTEM_ELF OUT_ISO" >&2; exit 2; }
elf=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
grub_dir=${GRUB_DIR:-/usr/lib/grub/i386-pc}
volid=${ISO_VOLID:-UNIPI_RS}
: "${SOURCE_DATE_EPOCH:?SOURCE_DATE_EPOCH must be set (the Makefile exports it)}"

for tool in grub-mkimage grub-file xorriso; do
    command -v "$tool" >/dev/null || {
        echo "mkiso: $tool is missing; install the Debian packages grub-common, grub-pc-bin and xorriso (make deps)" >&2
        exit 1
    }
done
[ -f "$grub_dir/cdboot.img" ] || {
    echo "mkiso: no GRUB i386-pc files in $grub_dir; install grub-pc-bin (make deps)" >&2
    exit 1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
root=$tmp/root
mkdir -p "$root/boot/grub"

grub-file --is-x86-multiboot "$elf" || {
    echo "mkiso: $elf is not a multiboot image (pack it with: muen-tools pack ... --multiboot true)" >&2
    exit 1
}
cp "$elf" "$root/boot/system.elf"
cp "$here/grub.cfg" "$root/boot/grub/grub.cfg"

# GRUB core for El Torito: biosdisk + iso9660 find /boot/grub on the boot
# medium (CD, memdisk's emulated CD, or the stick via part_msdos); normal
# reads grub.cfg; multiboot loads the kernel. Dependencies are added by
# grub-mkimage from moddep.lst.
grub-mkimage -d "$grub_dir" -O i386-pc-eltorito -p /boot/grub \
    -o "$root/boot/grub/eltorito.img" \
    biosdisk iso9660 part_msdos normal multiboot serial terminal echo

# YYYYMMDDhhmmsscc (UTC) for the volume dates, every file date and the
# El Torito catalog.
date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d%H%M%S00)
if ! xorriso -as mkisofs -o "$out.tmp" -V "$volid" -r \
        --modification-date="$date" --set_all_file_dates "$date" \
        -b boot/grub/eltorito.img -no-emul-boot -boot-load-size 4 \
        -boot-info-table --grub2-boot-info \
        --grub2-mbr "$grub_dir/boot_hybrid.img" \
        "$root" >"$tmp/xorriso.log" 2>&1; then
    cat "$tmp/xorriso.log" >&2
    rm -f "$out.tmp"
    exit 1
fi
mv "$out.tmp" "$out"
