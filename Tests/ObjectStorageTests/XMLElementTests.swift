import Testing

@testable import ObjectStorage

@Suite("S3 XML parsing")
struct XMLElementTests {
    @Test func parsesAnRGWErrorWithAnEmptyMessage() throws {
        let body = """
            <?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchBucket</Code><Message></Message>\
            <BucketName>missing</BucketName><RequestId>tx0001</RequestId><HostId>abc</HostId></Error>
            """
        let root = try XMLElement.parse(Array(body.utf8))
        #expect(root.name == "Error")
        #expect(root.text(of: "Code") == "NoSuchBucket")
        #expect(root.text(of: "Message") == "")
        #expect(root.text(of: "RequestId") == "tx0001")
    }

    @Test func parsesAListingWithNamespacesEntitiesAndCDATA() throws {
        let body = """
            <?xml version="1.0" encoding="UTF-8"?>
            <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
              <IsTruncated>true</IsTruncated>
              <Contents><Key>a &amp; b &lt;c&gt; &#233;&#x65E5;</Key><Size>12</Size>
                <ETag>&quot;abc&quot;</ETag></Contents>
              <!-- a comment -->
              <Contents><Key><![CDATA[x<y]]></Key><Size>0</Size></Contents>
              <NextContinuationToken>tok/en+=</NextContinuationToken>
              <s3:Empty xmlns:s3="urn:x" a='1'/>
            </ListBucketResult>
            """
        let root = try XMLElement.parse(Array(body.utf8))
        let contents = root.children("Contents")
        #expect(contents.count == 2)
        #expect(contents[0].text(of: "Key") == "a & b <c> é日")
        #expect(contents[0].text(of: "ETag") == "\"abc\"")
        #expect(contents[1].text(of: "Key") == "x<y")
        #expect(root.text(of: "NextContinuationToken") == "tok/en+=")
        #expect(root.child("Empty") != nil)
    }

    @Test(arguments: [
        "",
        "not xml",
        "<a><b></a>",
        "<a>",
        "<a>&bogus;</a>",
        "<a></a><b></b>",
        "<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
        "<a b=c></a>",
        String(repeating: "<a>", count: 100) + String(repeating: "</a>", count: 100),
    ])
    func rejectsMalformedInput(_ input: String) {
        #expect(throws: XMLElement.ParseError.self) { try XMLElement.parse(Array(input.utf8)) }
    }
}
