using System;
using System.Collections.Generic;
using System.Linq;

namespace GpuVirt.Core.Boot
{
    /// <summary>What one recorded edit of a command line did.</summary>
    internal enum BootEditKind
    {
        /// <summary>An item was added to <c>key=</c> (<see cref="BootEdit.Created"/>: the whole argument was new).</summary>
        Add,

        /// <summary>A conflicting item was replaced (<c>iommu=off</c> → <c>iommu=pt</c>).</summary>
        Replace,

        /// <summary>A conflicting item was taken out of a list that keeps other items.</summary>
        Remove,

        /// <summary>A whole argument was taken out (its only item conflicted).</summary>
        Drop,

        /// <summary>A quoted run <c>"..."</c> was added at the end of the value to hold new arguments.</summary>
        QuotedRun,

        /// <summary>The variable was missing: an assignment (with a marker comment) was added at the end of the file.</summary>
        Assignment,

        /// <summary>The file did not exist and was created with <see cref="BootEdit.Word"/> as its first content.</summary>
        CreatedFile,
    }

    /// <summary>One edit the module made to a command line in a file, with all it takes to undo exactly that.</summary>
    internal sealed class BootEdit
    {
        public BootEditKind Kind { get; set; }

        /// <summary>The host path of the file (<c>/etc/default/grub</c>).</summary>
        public string File { get; set; } = string.Empty;

        public string Key { get; set; } = string.Empty;
        public string Item { get; set; } = string.Empty;
        public string OldItem { get; set; } = string.Empty;

        /// <summary>For <see cref="BootEditKind.Drop"/>: the argument taken out; for <see cref="BootEditKind.CreatedFile"/>: the content written first.</summary>
        public string Word { get; set; } = string.Empty;

        /// <summary>The argument's index in the list (Drop) or the item's index in its comma list (Replace, Remove).</summary>
        public int Index { get; set; }

        /// <summary>Which of several arguments with the key (0 = first).</summary>
        public int Occurrence { get; set; }

        public string Separator { get; set; } = string.Empty;
        public bool SeparatorBefore { get; set; }

        /// <summary>For <see cref="BootEditKind.Drop"/>: where the argument started, counted from the start of the value.</summary>
        public int Offset { get; set; } = -1;

        public bool Created { get; set; }

        /// <summary>The shell variable the argument was in (<c>GRUB_CMDLINE_LINUX_DEFAULT</c>); empty for a plain file or the first variable.</summary>
        public string Variable { get; set; } = string.Empty;

        /// <summary>How a person reads it: <c>+iommu=pt</c>, <c>iommu=off -> iommu=pt</c>.</summary>
        public override string ToString() => Kind switch
        {
            BootEditKind.Add => "+" + Key + "=" + Item,
            BootEditKind.Replace => Key + "=" + OldItem + " -> " + Key + "=" + Item,
            BootEditKind.Remove => "-" + Key + "=" + OldItem,
            BootEditKind.Drop => "-" + Word,
            _ => Kind.ToString(),
        };
    }

    /// <summary>One argument the module wants on the command line, and the values that fight it.</summary>
    internal sealed class ArgumentRequirement
    {
        public ArgumentRequirement(string key, string? item, IEnumerable<string>? conflicts = null, bool ignoreCase = false)
        {
            Key = key;
            LastWins = KernelArguments.IsLastWins(key);
            Item = item;
            Conflicts = (conflicts ?? Array.Empty<string>()).ToList();
            Comparer = ignoreCase ? StringComparer.OrdinalIgnoreCase : StringComparer.Ordinal;
        }

        public string Key { get; }

        /// <summary>The item to have in <c>key=</c>; null when the requirement only removes conflicts.</summary>
        public string? Item { get; }

        public IReadOnlyList<string> Conflicts { get; }
        public StringComparer Comparer { get; }

        /// <summary>Only the last argument with the key counts (a module parameter such as <c>vfio-pci.ids</c>).</summary>
        public bool LastWins { get; }

        public override string ToString() => Item is null ? "no " + Key + "=" + string.Join("|", Conflicts) : Key + "=" + Item;
    }

    /// <summary>The outcome of an edit pass over one file.</summary>
    internal sealed class EditResult
    {
        public EditResult(string text, IReadOnlyList<BootEdit> edits, IReadOnlyList<string> notes)
        {
            Text = text;
            Edits = edits;
            Notes = notes;
        }

        public string Text { get; }
        public IReadOnlyList<BootEdit> Edits { get; }

        /// <summary>Edits that could not be undone because the file changed since, in words a person can act on.</summary>
        public IReadOnlyList<string> Notes { get; }
    }

    /// <summary>
    /// Brings a command line to what the requirements ask, recording each edit, and undoes recorded edits. Running
    /// the same requirements twice edits nothing the second time; undoing the recorded edits gives back the text.
    /// </summary>
    internal static class ArgumentEditor
    {
        public static EditResult Apply(string text, Func<string, CmdlineDocument> parse, string file, IEnumerable<ArgumentRequirement> requirements)
        {
            var doc = parse(text);
            var edits = new List<BootEdit>();
            foreach (var requirement in requirements)
            {
                doc = ApplyOne(doc, parse, file, requirement, edits);
            }
            return new EditResult(doc.Text, edits, Array.Empty<string>());
        }

        private static CmdlineDocument ApplyOne(CmdlineDocument doc, Func<string, CmdlineDocument> parse, string file, ArgumentRequirement req, List<BootEdit> edits)
        {
            var matching = Matching(doc, req.Key, file);
            // A module parameter takes only its last argument: an item in an earlier one is overridden, not present.
            var present = req.Item != null && (req.LastWins
                ? matching.Count > 0 && KernelArguments.ItemsOf(matching[matching.Count - 1].Text).Contains(req.Item, req.Comparer)
                : matching.Any(w => KernelArguments.ItemsOf(w.Text).Contains(req.Item, req.Comparer)));
            var replaced = false;

            // Conflicting items go: the first becomes the wanted item (when it is not there yet), the rest leave.
            for (var occurrence = 0; occurrence < matching.Count; occurrence++)
            {
                var word = Matching(doc, req.Key, file)[occurrence];
                var items = KernelArguments.ItemsOf(word.Text);
                var newItems = new List<string>();
                var itemEdits = new List<BootEdit>();
                for (var i = 0; i < items.Count; i++)
                {
                    if (!req.Conflicts.Contains(items[i], StringComparer.OrdinalIgnoreCase))
                    {
                        newItems.Add(items[i]);
                        continue;
                    }
                    if (req.Item != null && !present && !replaced)
                    {
                        replaced = true;
                        newItems.Add(req.Item);
                        itemEdits.Add(new BootEdit { Kind = BootEditKind.Replace, File = file, Key = KernelArguments.KeyOf(word.Text), Item = req.Item, OldItem = items[i], Index = i, Occurrence = occurrence, Variable = word.Variable ?? string.Empty });
                    }
                    else
                    {
                        itemEdits.Add(new BootEdit { Kind = BootEditKind.Remove, File = file, Key = KernelArguments.KeyOf(word.Text), OldItem = items[i], Index = i, Occurrence = occurrence, Variable = word.Variable ?? string.Empty });
                    }
                }
                if (itemEdits.Count == 0) continue;

                if (newItems.Count == 0)
                {
                    var text = doc.RemoveWord(word.Index, out var separator, out var before, out var offset);
                    edits.Add(new BootEdit { Kind = BootEditKind.Drop, File = file, Key = KernelArguments.KeyOf(word.Text), Word = word.Text, Index = word.Index, Occurrence = occurrence, Separator = separator, SeparatorBefore = before, Offset = offset, Variable = word.Variable ?? string.Empty });
                    doc = parse(text);
                    occurrence--;
                    matching = Matching(doc, req.Key, file);
                    continue;
                }
                doc = parse(doc.ReplaceWord(word.Index, KernelArguments.Compose(KernelArguments.KeyOf(word.Text), newItems, word.Text.Contains("="))));
                edits.AddRange(itemEdits);
                matching = Matching(doc, req.Key, file);
            }

            if (req.Item is null || present || replaced) return doc;

            matching = Matching(doc, req.Key, file);
            if (matching.Count > 0)
            {
                // The last argument with the key is the one a module parameter takes: the item joins its list.
                var last = matching[matching.Count - 1];
                var items = KernelArguments.ItemsOf(last.Text);
                items.Add(req.Item);
                doc = parse(doc.ReplaceWord(last.Index, KernelArguments.Compose(KernelArguments.KeyOf(last.Text), items)));
                edits.Add(new BootEdit { Kind = BootEditKind.Add, File = file, Key = KernelArguments.KeyOf(last.Text), Item = req.Item, Occurrence = matching.Count - 1, Created = false, Variable = last.Variable ?? string.Empty });
                return doc;
            }

            var appended = doc.AppendWord(req.Key + "=" + req.Item, out var placement);
            if (placement == AppendPlacement.NewQuotedRun) edits.Add(new BootEdit { Kind = BootEditKind.QuotedRun, File = file });
            if (placement == AppendPlacement.NewAssignment) edits.Add(new BootEdit { Kind = BootEditKind.Assignment, File = file });
            edits.Add(new BootEdit { Kind = BootEditKind.Add, File = file, Key = req.Key, Item = req.Item, Created = true });
            return parse(appended);
        }

        /// <summary>The arguments with the key; one the module cannot rewrite safely is an error, never a guess.</summary>
        private static List<ArgumentWord> Matching(CmdlineDocument doc, string key, string file)
        {
            var list = new List<ArgumentWord>();
            foreach (var w in doc.Words)
            {
                var wordKey = KernelArguments.KeyOf(w.Text);
                if (!KernelArguments.SameKey(wordKey, key)) continue;
                if (!w.IsSimple || w.Text.Any(c => !KernelArguments.IsPlainChar(c)))
                {
                    throw new GpuVirtException(ErrorIds.BootArgumentNotEditable, ErrorKind.InvalidData,
                        $"'{w.Text}' in '{file}' is written with quoting or an expansion the module will not rewrite. " +
                        $"Write it as a plain argument ({key}=...) and run the command again.", file);
                }
                list.Add(w);
            }
            return list;
        }

        /// <summary>Undoes recorded edits (last first). An edit the file no longer shows is left alone and reported.</summary>
        public static EditResult Undo(string text, Func<string, CmdlineDocument> parse, string file, IReadOnlyList<BootEdit> recorded)
        {
            var doc = parse(text);
            var notes = new List<string>();
            var undone = new List<BootEdit>();
            for (var n = recorded.Count - 1; n >= 0; n--)
            {
                var e = recorded[n];
                var before = doc.Text;
                doc = parse(UndoOne(doc, e, notes));
                if (doc.Text != before) undone.Add(e);
            }
            undone.Reverse();
            return new EditResult(doc.Text, undone, notes);
        }

        private static string UndoOne(CmdlineDocument doc, BootEdit e, List<string> notes)
        {
            List<ArgumentWord> matching;
            try
            {
                matching = Matching(doc, e.Key.Length > 0 ? e.Key : "\0", e.File);
            }
            catch (GpuVirtException ex)
            {
                notes.Add(ex.Message);
                return doc.Text;
            }

            switch (e.Kind)
            {
                case BootEditKind.Add:
                {
                    var comparer = StringComparer.OrdinalIgnoreCase;
                    for (var i = matching.Count - 1; i >= 0; i--)
                    {
                        var items = KernelArguments.ItemsOf(matching[i].Text);
                        var at = items.FindLastIndex(x => comparer.Equals(x, e.Item));
                        if (at < 0) continue;
                        items.RemoveAt(at);
                        if (items.Count == 0 && e.Created) return doc.RemoveWord(matching[i].Index, out _, out _, out _);
                        return doc.ReplaceWord(matching[i].Index, KernelArguments.Compose(KernelArguments.KeyOf(matching[i].Text), items));
                    }
                    notes.Add($"'{e.Key}={e.Item}' is no longer in '{e.File}'; nothing to remove.");
                    return doc.Text;
                }
                case BootEditKind.Replace:
                {
                    var ordered = e.Occurrence < matching.Count
                        ? new[] { matching[e.Occurrence] }.Concat(matching.Where((_, i) => i != e.Occurrence))
                        : matching;
                    foreach (var w in ordered)
                    {
                        var items = KernelArguments.ItemsOf(w.Text);
                        var at = e.Index < items.Count && items[e.Index] == e.Item ? e.Index : items.IndexOf(e.Item);
                        if (at < 0) continue;
                        items[at] = e.OldItem;
                        return doc.ReplaceWord(w.Index, KernelArguments.Compose(KernelArguments.KeyOf(w.Text), items, w.Text.Contains("=")));
                    }
                    notes.Add($"'{e.Key}={e.Item}' is no longer in '{e.File}'; '{e.Key}={e.OldItem}' was not put back.");
                    return doc.Text;
                }
                case BootEditKind.Remove:
                {
                    if (e.Occurrence >= matching.Count)
                    {
                        notes.Add($"'{e.Key}=' is no longer in '{e.File}'; '{e.OldItem}' was not put back.");
                        return doc.Text;
                    }
                    var w = matching[e.Occurrence];
                    var items = KernelArguments.ItemsOf(w.Text);
                    items.Insert(Math.Min(e.Index, items.Count), e.OldItem);
                    return doc.ReplaceWord(w.Index, KernelArguments.Compose(KernelArguments.KeyOf(w.Text), items));
                }
                case BootEditKind.Drop:
                    try
                    {
                        return doc.InsertWord(e.Index, e.Word, e.Separator, e.SeparatorBefore, e.Offset, e.Variable);
                    }
                    catch (ArgumentException)
                    {
                        notes.Add($"'{e.Word}' could not be put back into '{e.File}'.");
                        return doc.Text;
                    }
                case BootEditKind.QuotedRun:
                    return doc.RemoveEmptyTrailingQuotes();
                case BootEditKind.Assignment:
                    return doc.RemoveAddedAssignment();
                default:
                    return doc.Text;
            }
        }
    }
}
