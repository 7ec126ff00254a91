using System;
using System.Collections.Generic;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace GpuVirt.Core.Journal
{
    /// <summary>
    /// Keeps a record's structured parts in the journal beside its public members: <c>"Changes"</c>, <c>"Files"</c> and
    /// <c>"Inverse"</c>. They are internal to the core (a user sees them flat, as lines and paths), so the serializer
    /// would not see them; the journal's format stays as it always was.
    /// </summary>
    internal sealed class ChangeRecordConverter : JsonConverter<ChangeRecord>
    {
        private readonly JsonSerializerOptions _members;

        /// <param name="options">The journal's options, without this converter: used for the record's public members and its parts.</param>
        public ChangeRecordConverter(JsonSerializerOptions options)
        {
            _members = options;
        }

        public override ChangeRecord Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (JsonNode.Parse(ref reader) is not JsonObject node) throw new JsonException("A change record is not a JSON object.");
            var changes = Take(node, "Changes");
            var files = Take(node, "Files");
            var inverse = Take(node, "Inverse");
            var record = node.Deserialize<ChangeRecord>(_members) ?? throw new JsonException("A change record is null.");
            record.Details = changes?.Deserialize<List<ChangeDetail>>(_members) ?? new List<ChangeDetail>();
            record.FileChanges = files?.Deserialize<List<ChangeFile>>(_members) ?? new List<ChangeFile>();
            record.Inverse = inverse?.Deserialize<List<InverseStep>>(_members) ?? new List<InverseStep>();
            return record;
        }

        public override void Write(Utf8JsonWriter writer, ChangeRecord value, JsonSerializerOptions options)
        {
            var node = JsonSerializer.SerializeToNode(value, _members) as JsonObject ?? throw new JsonException("A change record did not serialize as an object.");
            node["Changes"] = JsonSerializer.SerializeToNode(value.Details, _members);
            node["Files"] = JsonSerializer.SerializeToNode(value.FileChanges, _members);
            node["Inverse"] = JsonSerializer.SerializeToNode(value.Inverse, _members);
            node.WriteTo(writer, _members);
        }

        private static JsonNode? Take(JsonObject node, string name)
        {
            node.TryGetPropertyValue(name, out var value);
            node.Remove(name);
            return value;
        }
    }
}
