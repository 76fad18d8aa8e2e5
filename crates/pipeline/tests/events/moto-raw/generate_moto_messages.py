"""Reference copy of the script that produced ../moto-sqs-keys.json and the bodies in this folder.

Run against a moto_server started as `moto_server -H 127.0.0.1 -p PORT`, with PORT written to
/tmp/moto_port (moto 5.2.5, boto3 1.44.5, Python 3.11). It writes the ReceiveMessage results to
/tmp/motowork/received.json (kept here as receive-message-responses.json); the Lambda SQS
wrapping was done from that file. Not used by any test.
"""
import boto3, json, os, sys, time
port = open('/tmp/moto_port').read().strip()
ep = f"http://127.0.0.1:{port}"
kw = dict(endpoint_url=ep, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
s3 = boto3.client("s3", **kw); sqs = boto3.client("sqs", **kw)
s3.create_bucket(Bucket="uploads")
qurl = sqs.create_queue(QueueName="uploads-events")["QueueUrl"]
qarn = sqs.get_queue_attributes(QueueUrl=qurl, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
s3.put_bucket_notification_configuration(Bucket="uploads", NotificationConfiguration={
  "QueueConfigurations":[{"Id":"uploads-created","QueueArn":qarn,"Events":["s3:ObjectCreated:*"]}]})
objs = [("my photo (1).jpg", b"\xff\xd8\xff\xe0" + b"A"*60), ("ünï/фото.jpg", b"\xff\xd8\xff\xe0"+b"B"*40),
        ("a+b.jpg", b"\xff\xd8\xff\xe0"+b"C"*20), ("folder/", b""), ("plain.jpg", b"\xff\xd8"+b"D"*98)]
for k, body in objs:
    r = s3.put_object(Bucket="uploads", Key=k, Body=body, ContentType="application/x-directory" if k.endswith("/") else "image/jpeg")
    print("put", repr(k), len(body), r["ETag"], file=sys.stderr)
msgs = []
deadline = time.time() + 20
while time.time() < deadline:
    r = sqs.receive_message(QueueUrl=qurl, MaxNumberOfMessages=10, WaitTimeSeconds=1,
        AttributeNames=["All"], MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"])
    got = r.get("Messages", [])
    msgs.extend(got)
    if not got and len(msgs) >= 5: break
json.dump({"QueueUrl": qurl, "QueueArn": qarn, "Messages": msgs}, open("/tmp/motowork/received.json","w"), ensure_ascii=False, indent=1)
print(len(msgs), "messages", file=sys.stderr)
