#!/usr/bin/env python3
"""Which parts of the s3-canary binary a running process holds in memory: by ELF section, and the code by object.

    python3 scripts/resident.py PID [LINK_MAP]

PID is a running s3-canary (for instance the release binary, idle); LINK_MAP the linker's map scripts/release.sh
writes beside the binary (`s3-canary.map`), for the code by object and the 64 KiB windows of code the kernel mapped.
Reads /proc/PID/maps and /proc/PID/pagemap (whose present bits need no privilege for one's own processes).
docs/design.md 4.13 has what these figures showed and what was done about them.
"""
import bisect
import collections
import re
import struct
import subprocess
import sys

from hot_text import text_sections  # scripts/hot_text.py, beside this file

PAGE = 4096


def resident_pages(pid, binary):
    """The binary's resident pages, as addresses in the binary's own address space."""
    mappings = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 6 and fields[5] == binary:
                low, high = (int(x, 16) for x in fields[0].split("-"))
                mappings.append((low, high, int(fields[2], 16)))
    if not mappings:
        sys.exit(f"resident: {binary} is not mapped in process {pid}")
    bias = mappings[0][0] - mappings[0][2]  # the first mapping is the file from offset 0 (PIE: address 0)
    pages = []
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for low, high, _ in mappings:
            pagemap.seek(low // PAGE * 8)
            entries = pagemap.read((high - low) // PAGE * 8)
            for index in range((high - low) // PAGE):
                if struct.unpack_from("<Q", entries, index * 8)[0] >> 63:
                    pages.append(low + index * PAGE - bias)
    return pages


def sections(binary):
    """(start, end, name) of every allocated section."""
    out = subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        match = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", line)
        if match and int(match.group(2), 16):
            start = int(match.group(2), 16)
            found.append((start, start + int(match.group(3), 16), match.group(1)))
    return sorted(found)


def code_objects(link_map):
    """(start, end, module or library) of every input section of `.text`, from lld's map (read as hot_text.py does)."""
    found = []
    for start, end, source, _ in text_sections(link_map):
        library = re.search(r"/lib([^/]+)\.a\(", source)
        module = re.search(r"/([^/]+)\.build/", source)
        name = library.group(1) if library else module.group(1) if module else source.rsplit("/", 1)[-1]
        found.append((start, end, name))
    return found


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    pid = int(sys.argv[1])
    binary = subprocess.run(["readlink", "-f", f"/proc/{pid}/exe"], capture_output=True, text=True).stdout.strip()
    pages = resident_pages(pid, binary)
    with open(f"/proc/{pid}/status") as f:
        status = {line.split(":")[0]: line.split()[1] for line in f if len(line.split()) > 1}
    print(f"process {pid}: VmRSS {int(status['VmRSS']) / 1024:.1f} MiB (anonymous "
          f"{int(status['RssAnon']) / 1024:.1f}, files {int(status['RssFile']) / 1024:.1f}); "
          f"{len(pages) * PAGE / 2**20:.1f} MiB of {binary}")
    table = sections(binary)
    starts = [row[0] for row in table]
    by_section = collections.Counter()
    for page in pages:
        index = bisect.bisect_right(starts, page + PAGE // 2) - 1
        by_section[table[index][2] if index >= 0 and page < table[index][1] else "(between sections)"] += 1
    print("by section:")
    for name, count in by_section.most_common(12):
        print(f"  {name:32} {count * PAGE / 2**20:6.2f} MiB")
    if len(sys.argv) == 3:
        objects = code_objects(sys.argv[2])
        object_starts = [row[0] for row in objects]
        by_object, windows = collections.Counter(), collections.Counter()
        for page in pages:
            index = bisect.bisect_right(object_starts, page + PAGE // 2) - 1
            if index >= 0 and page < objects[index][1]:
                by_object[objects[index][2]] += 1
                windows[page // 65536] += 1
        print(f"code: {sum(by_object.values()) * PAGE / 2**20:.2f} MiB in {len(windows)} windows of 64 KiB; by "
              "module or library:")
        for name, count in by_object.most_common(15):
            print(f"  {name:32} {count * PAGE / 2**20:6.2f} MiB")


if __name__ == "__main__":
    main()
