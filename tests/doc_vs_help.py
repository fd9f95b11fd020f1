#!/usr/bin/env python3
"""doc_vs_help.py MAN HELP [FORM] - does a program's --help say what its man page says?

As git's t0450-txt-doc-vs-help.sh compares each command's -h with its manual, this
compares HELP (the output of PROGRAM --help, a file) with MAN (its troff page):

- the usage lines of HELP are the SYNOPSIS of MAN, rendered (fonts dropped, .br a
  new line), word for word;
- the options of HELP are those MAN's OPTIONS section documents, no more, no less;
- where either states an option's default, both state it, and the same one.

A default is what follows "(default" or "; default" up to ")" or ";" (a bare
"(default)" or "(the default)" makes the word before it the default).

With FORM (e.g. "pare show": a verb that pare(1) documents in its synopsis), HELP
is that verb's --help: its usage is the synopsis lines that begin with FORM, and
each of its options is named there or in OPTIONS. Prints each difference and exits 1 if there
is any."""
import re
import sys


def troff_text(line):
    """A line of troff as plain text: macros dropped, font runs joined."""
    line = line.replace("\\-", "-").replace("\\(dq", '"').replace("\\&", "").replace("\\e", "\\")
    line = re.sub(r"\\f[BIRP]", "", line)
    m = re.match(r"\.(B|I|BR|RB|BI|IB|IR|RI)\s+(.*)$", line)
    if not m:
        return "" if line.startswith(".") else line
    args = re.findall(r'"([^"]*)"|(\S+)', m.group(2))
    args = [a if a else b for a, b in args]
    return ("" if len(m.group(1)) == 2 else " ").join(args)  # BR, IR...: alternating fonts, no spaces


def sections(man):
    out, name = {}, None
    for line in open(man, encoding="utf-8"):
        line = line.rstrip("\n")
        if line.startswith(".SH "):
            name = line[4:].strip().strip('"')
            out[name] = []
        elif name:
            out[name].append(line)
    return out


def man_synopsis(sec):
    lines, cur = [], []
    for line in sec.get("SYNOPSIS", []):
        if line.strip() == ".br":
            lines.append(" ".join(cur))
            cur = []
        else:
            t = troff_text(line).strip()
            if t:
                cur.append(t)
    lines.append(" ".join(cur))
    return [re.sub(r"\s+", " ", l).strip() for l in lines if l.strip()]


def man_options(sec):
    """{option: description} from the OPTIONS section (one .TP entry per tag)."""
    opts, tags, desc, in_tag = {}, [], [], False

    def flush():
        text = re.sub(r"\s+", " ", " ".join(desc)).strip()
        for t in tags:
            opts[t] = text

    for line in sec.get("OPTIONS", []):
        if line.startswith(".TP"):
            flush()
            tags, desc, in_tag = [], [], True
        elif in_tag:
            tags = re.findall(r"--[a-z][a-z-]*", line.replace("\\-", "-"))
            in_tag = False
        elif line.startswith((".PP", ".SS")):
            flush()
            tags, desc = [], []
        else:
            desc.append(troff_text(line))
    flush()
    return opts


def help_parts(path):
    text = open(path, encoding="utf-8").read().split("\n")
    usage, opts, shorts, cur = [], {}, {}, None
    for line in text:
        if line.startswith("usage:"):
            usage.append(line[len("usage:"):].strip())
            continue
        ended = None in usage
        if usage and not ended and line.startswith("       "):
            if line.split()[0] == usage[0].split()[0]:
                usage.append(line.strip())  # another form
            else:
                usage[-1] += " " + line.strip()  # the same form, continued
            continue
        if usage and not ended and not line.strip():
            usage.append(None)  # the usage ends at the first blank line
            continue
        m = re.match(r"\s{2,}(?:(-[a-zA-Z]), )?(--[a-z][a-z-]*)(?: \S+)?(?:\s{2,}(.*))?$", line)
        if m:
            cur = m.group(2)
            opts[cur] = (m.group(3) or "").strip()
            shorts[cur] = m.group(1)
        elif cur and re.match(r"\s{8,}\S", line):
            opts[cur] += " " + line.strip()
        else:
            cur = None
    return [re.sub(r"\s+", " ", u) for u in usage[: usage.index(None) if None in usage else len(usage)]], opts, shorts


def default_of(text):
    text = re.sub(r"\s+", " ", text)
    m = re.search(r"(?:\(|; )default:? ([^);]+)", text)
    if m:
        return m.group(1).strip().rstrip(".").lower()
    m = re.search(r"(\S+) \((?:the )?default[);]", text) or re.search(r"(\S+) \([^()]*; default\)", text)
    if m:
        return m.group(1).strip(",").lower()
    return None


def main():
    man, helpf = sys.argv[1], sys.argv[2]
    sec = sections(man)
    bad = []
    usage, hopts, shorts = help_parts(helpf)
    syn = man_synopsis(sec)
    if len(sys.argv) > 3:
        form = sys.argv[3]
        syn = [l for l in syn if l == form or l.startswith(form + " ")]
        if usage != syn:
            bad.append("usage differs:\n  --help: %s\n  man:    %s" % ("\n          ".join(usage), "\n          ".join(syn)))
        words = set(re.findall(r"--?[a-zA-Z][a-z-]*", " ".join(syn))) | set(man_options(sec))
        for o in sorted(hopts):
            if o != "--help" and o not in words and shorts[o] not in words:
                bad.append("%s: in --help, not in the synopsis of %s" % (o, form))
        for b in bad:
            print(b)
        return 1 if bad else 0
    if usage != syn:
        bad.append("usage differs:\n  --help: %s\n  man:    %s" % ("\n          ".join(usage), "\n          ".join(syn)))
    mopts = man_options(sec)
    for o in sorted(set(mopts) - set(hopts)):
        bad.append("%s: in the man page, not in --help" % o)
    for o in sorted(set(hopts) - set(mopts)):
        bad.append("%s: in --help, not in the man page" % o)
    for o in sorted(set(mopts) & set(hopts)):
        dm, dh = default_of(mopts[o]), default_of(hopts[o])
        if dm != dh:
            bad.append("%s: default %r in --help, %r in the man page" % (o, dh, dm))
    for b in bad:
        print(b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
